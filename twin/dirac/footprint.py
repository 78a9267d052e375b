"""The RPC footprint of a production job and of the agents, read from the DIRAC 9.1.22 sources.

Each `Rpc` is one round trip from a DIRAC client to a service: the service it reaches, the
handler method, and the MySQL round trips the handler makes (database, table or operation,
number of queries). `JOB_LIFE` lists which RPCs a production job makes in each phase of its
life; `docs/fidelity.md` carries the same table with its sources, and `footprint_table()`
renders it so the two cannot drift apart.

Aggregation follows DIRAC: a bulk call (setJobStatusBulk, setJobParameters, getReplicas of a
list of LFNs) is one RPC with many rows; N single calls (addFile per output, setTaskStatusAndWmsID
per task) are N RPCs. The twin's pure stores (TransformationDB, FileCatalog) report their own
calls through `meter(db, op, rows)`, one RPC per call; `QUERIES_PER_CALL` says how many MySQL
round trips the handler of such a call makes.

Databases not declared in a scenario's topology are charged to their home database
(`DB_HOME`: JobLoggingDB, TaskQueueDB and PilotAgentsDB live next to JobDB at CTAO);
JobParametersDB is OpenSearch in DIRAC 9 (no MySQL cost unless a topology declares it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rpc:
    """One client -> service round trip and the DB queries its handler makes."""

    service: str
    method: str
    queries: tuple[tuple[str, str, int], ...]
    source: str

    @property
    def kind(self) -> str:
        return f"{self.service}.{self.method}"

    def query_count(self) -> int:
        return sum(n for _, _, n in self.queries)


WMS = "WorkloadManagementSystem"
_STATUS_BULK = (("JobDB", "Jobs", 3), ("JobLoggingDB", "LoggingInfo", 2))

RPCS: dict[str, Rpc] = {rpc.kind: rpc for rpc in (
    # ---- submission (WorkflowTaskAgent thread)
    Rpc("JobManager", "submitJob", (("JobDB", "JobJDLs", 2), ("JobDB", "Jobs", 1), ("JobDB", "InputData", 1),
                                    ("JobLoggingDB", "LoggingInfo", 1)),
        f"{WMS}/Service/JobManagerHandler.py:export_submitJob -> DB/JobDB.py:insertNewJobIntoDB (__insertNewJDL, "
        "insertFields Jobs, setJobJDL, InputData _updatemany), DB/JobLoggingDB.py:addLoggingRecord"),
    # ---- optimizers (executors, OptimizationMind): direct DB access, billed to the executors' host
    Rpc("Optimizers", "optimizeJob", (("JobDB", "Jobs", 6), ("JobLoggingDB", "LoggingInfo", 4), ("TaskQueueDB", "tq_Jobs", 3)),
        f"{WMS}/Executor/JobPath.py, JobSanity.py, InputData.py, JobScheduling.py:optimizeJob via "
        "Client/JobState/CachedJobState (load attributes + JDL, one setStatus + logging record per executor), "
        "DB/TaskQueueDB.py:insertJob"),
    # ---- matching (pilot JobAgent)
    Rpc("Matcher", "requestJob", (("TaskQueueDB", "tq_TaskQueues", 1),),
        f"{WMS}/Service/MatcherHandler.py:export_requestJob -> Client/Matcher.py:selectJob -> DB/TaskQueueDB.py:matchAndGetJob"),
    Rpc("Matcher", "requestJob+matched", (("TaskQueueDB", "tq_Jobs", 1), ("JobDB", "Jobs", 5), ("JobLoggingDB", "LoggingInfo", 1),
                                          ("PilotAgentsDB", "PilotAgents", 2)),
        f"{WMS}/Client/Matcher.py:selectJob (getJobAttributes x2, getJobJDL, getJobOptParameters, TaskQueueDB.deleteJob), "
        "_reportStatus (setJobAttributes, addLoggingRecord), _updatePilotJobMapping (setCurrentJobID, setJobForPilot)"),
    # ---- JobAgent / JobWrapper / Watchdog (job side)
    Rpc("JobStateUpdate", "setJobStatusBulk", _STATUS_BULK,
        f"{WMS}/JobWrapper/JobWrapper.py:__report(sendFlag=True) -> Client/JobReport.py -> Service/JobStateUpdateHandler.py:"
        "export_setJobStatusBulk -> Utilities/JobStatusUtility.py:setJobStatusBulk (getJobAttributes, setJobAttributes, "
        "set{Start,End}ExecTime; getWMSTimeStamps, addLoggingRecord)"),
    Rpc("JobStateUpdate", "setJobParameters", (("JobParametersDB", "job parameters", 1),),
        f"{WMS}/Service/JobStateUpdateHandler.py:export_setJobParameters -> DB/JobParametersDB.py (OpenSearch); callers: "
        "Agent/JobAgent.py:execute, JobWrapper.py:__setJobParamList, Watchdog.py:__setJobParamList (calibrate, usage summary)"),
    Rpc("JobStateUpdate", "sendHeartBeat", (("JobDB", "HeartBeatLoggingInfo", 2), ("JobDB", "Jobs", 1), ("JobDB", "JobCommands", 1)),
        f"{WMS}/JobWrapper/Watchdog.py:__sendSignOfLife every CheckingTime (1800 s) -> JobStateUpdateHandler.py:export_sendHeartBeat "
        "(setHeartBeatData, getJobAttributes Status, getJobCommand)"),
    Rpc("FileCatalog", "setMetadata", (("FileCatalogDB", "FC_FileMeta", 2),),
        "CTADIRAC Core/Workflow/Modules/ProdDataManager.py:putAndRegister -> fc.setMetadata(lfn, fmd) per output"),
    Rpc("TransformationManager", "setFileStatusForTransformation", (("TransformationDB", "TransformationFiles", 2),),
        "CTADIRAC Core/Workflow/Modules/ProdDataManager.py:setTransformationFileStatus (the job sets its inputs)"),
    Rpc("DataStore", "commitRegisters", (("AccountingDB", "ac_type_Job", 1),),
        f"{WMS}/JobWrapper/JobWrapper.py:sendJobAccounting -> accountingReport.commit -> AccountingSystem DataStore"),
    Rpc("ReqManager", "putRequest", (("ReqDB", "Request+Operation+File", 3),),
        f"{WMS}/JobWrapper/JobWrapper.py:sendFailoverRequest -> RequestManagementSystem/Client/ReqClient.py:putRequest"),
    # ---- pilots
    Rpc("PilotManager", "addPilotReferences", (("PilotAgentsDB", "PilotAgents", 1),),
        f"{WMS}/Agent/SiteDirector.py:_addPilotReferences (one bulk call per CE submission)"),
    Rpc("PilotManager", "setPilotStatus", (("PilotAgentsDB", "PilotAgents", 1),),
        f"{WMS}/Agent/JobAgent.py:finalize -> PilotManagerClient.setPilotStatus"),
    Rpc("Matcher", "getMatchingTaskQueues", (("TaskQueueDB", "tq_TaskQueues", 2),),
        f"{WMS}/Agent/SiteDirector.py:execute -> MatcherClient.getMatchingTaskQueues"),
    # ---- task-manager agents (per transformation and cycle)
    Rpc("JobMonitoring", "getJobsStatus", (("JobDB", "Jobs", 1),),
        "TransformationSystem/Client/WorkflowTasks.py:getSubmittedTaskStatus / getSubmittedFileStatus (one bulk call)"),
    Rpc("TransformationManager", "getTransformations", (("TransformationDB", "Transformations", 1),),
        "TransformationSystem/Agent/TaskManagerAgentBase.py:_selectTransformations (once per operation and cycle)"),
    # ---- background: web portal and monitoring (scenario `dirac.background_rpcs`)
    Rpc("WebApp", "getJobPageSummaryWeb", (("JobDB", "Jobs", 2),),
        "MonitoringSystem/Service/WebAppHandler.py:export_getJobPageSummaryWeb (Job Monitor page: count + page select)"),
    Rpc("WebApp", "getTransformationSummaryWeb", (("TransformationDB", "Transformations+TransformationTasks", 3),),
        "MonitoringSystem/Service/WebAppHandler.py:export_getTransformationSummaryWeb (Transformation Monitor page)"),
    Rpc("JobMonitoring", "selectJobs", (("JobDB", "Jobs", 1),),
        f"{WMS}/Agent/StalledJobAgent.py:_markStalledJobs (direct JobDB access, one query per cycle + per-job rows)"),
)}

#: MySQL round trips of one metered call of the pure stores (default 1), from the DB classes.
QUERIES_PER_CALL: dict[tuple[str, str], int] = {
    ("FileCatalogDB", "addFile"): 5,  # DataManagementSystem/DB/FileCatalogDB: FC_Files, FC_FileInfo, FC_Replicas, FC_ReplicaInfo, dir lookup
    ("FileCatalogDB", "addReplica"): 3,
    ("TransformationDB", "addTaskForTransformation"): 4,  # TransformationDB.addTaskForTransformation: task, inputs, files update
    ("TransformationDB", "setTaskStatusAndWmsID"): 1,
    ("TransformationDB", "getTasksToSubmit"): 3,  # select tasks, their inputs, reserve
}

#: Where a footprint DB lives when a topology does not declare it.
DB_HOME = {"JobLoggingDB": "JobDB", "TaskQueueDB": "JobDB", "PilotAgentsDB": "JobDB", "SandboxMetadataDB": "JobDB",
           "StorageManagementDB": "JobDB"}

# ---------------------------------------------------------------- a production job's life
#: (phase, RPC kind, count); counts are per job; "per input", "per output", "per heartbeat" scale.
JOB_LIFE: tuple[tuple[str, str, str], ...] = (
    ("submission", "JobManager.submitJob", "1"),
    ("submission", "TransformationManager.setTaskStatusAndWmsID", "1"),
    ("optimizers", "Optimizers.optimizeJob", "1"),
    ("optimizers", "FileCatalog.getReplicas", "1 (bulk over the job's inputs)"),
    ("matching", "Matcher.requestJob", "1 per attempt"),
    ("matching", "Matcher.requestJob+matched", "1"),
    ("start", "JobStateUpdate.setJobParameters", "2 (JobAgent, Watchdog calibration)"),
    ("start", "JobStateUpdate.setJobStatusBulk", "3 (Running/Job Initialization, Input Data Resolution, Application)"),
    ("input", "FileCatalog.getReplicas", "1 (bulk)"),
    ("input", "FileCatalog.getFileSize", "1 (bulk)"),
    ("running", "JobStateUpdate.sendHeartBeat", "1 per CheckingTime (1800 s) of running"),
    ("upload", "FileCatalog.addFile", "1 per output"),
    ("upload", "FileCatalog.setMetadata", "1 per output"),
    ("end", "TransformationManager.setFileStatusForTransformation", "1"),
    ("end", "JobStateUpdate.setJobStatusBulk", "3 (Completing, Output Data Uploaded, Done/Failed)"),
    ("end", "JobStateUpdate.setJobParameters", "2 (usage summary, CPU times)"),
    ("end", "DataStore.commitRegisters", "1"),
)

#: The phases the twin charges as one batch each (kinds x count); per-output/per-input terms are added at the call site.
JOB_START = (("JobStateUpdate.setJobParameters", 2), ("JobStateUpdate.setJobStatusBulk", 3))
JOB_END = (("JobStateUpdate.setJobStatusBulk", 3), ("JobStateUpdate.setJobParameters", 2), ("DataStore.commitRegisters", 1))
SUBMIT = (("JobManager.submitJob", 1),)
MATCH_ATTEMPT = (("Matcher.requestJob", 1),)
MATCHED = (("Matcher.requestJob+matched", 1),)
OPTIMIZE = (("Optimizers.optimizeJob", 1),)
HEARTBEAT = "JobStateUpdate.sendHeartBeat"
PILOT_END = (("PilotManager.setPilotStatus", 1),)


def footprint_table() -> str:
    """The RPC table of docs/fidelity.md, as Markdown (service, method, DB round trips, DIRAC source)."""
    lines = ["| RPC (service.method) | DB round trips per call | DIRAC source |", "|---|---|---|"]
    for rpc in RPCS.values():
        dbs = ", ".join(f"{db}.{table} x{n}" for db, table, n in rpc.queries)
        lines.append(f"| {rpc.kind} | {dbs} | {rpc.source} |")
    return "\n".join(lines)


def job_life_table() -> str:
    lines = ["| phase | RPC | calls per job |", "|---|---|---|"]
    lines += [f"| {phase} | {kind} | {count} |" for phase, kind, count in JOB_LIFE]
    return "\n".join(lines)
