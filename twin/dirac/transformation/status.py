"""Status vocabularies of the Transformation System, spelt exactly as DIRAC spells them.

Sources: DIRAC/TransformationSystem/Client/TransformationStatus.py and TransformationFilesStatus.py,
the task ExternalStatus values written by TaskManagerAgentBase (WMS job and RMS request statuses),
and the task-creation rule of TransformationDB.addTaskForTransformation.
"""

from __future__ import annotations

# --- Transformation status (Transformations.Status) -------------------------------------------
NEW = "New"
IDLE = "Idle"
ACTIVE = "Active"
FLUSH = "Flush"
COMPLETING = "Completing"
COMPLETED = "Completed"
ARCHIVED = "Archived"
CLEANING = "Cleaning"
CLEANED = "Cleaned"
STOPPED = "Stopped"
DELETED = "Deleted"
TRANSFORMATION_CLEANED = "TransformationCleaned"

TRANSFORMATION_STATES = (
    NEW, IDLE, ACTIVE, FLUSH, COMPLETING, COMPLETED, ARCHIVED,
    CLEANING, CLEANED, STOPPED, DELETED, TRANSFORMATION_CLEANED,
)
#: States in which new tasks may still be created.
TRANSFORMATION_ACTIVE_STATES = (NEW, IDLE, ACTIVE, FLUSH, COMPLETING, STOPPED)
#: States in which no new task is created.
TRANSFORMATION_FINAL_STATES = (COMPLETED, ARCHIVED, CLEANING, CLEANED, TRANSFORMATION_CLEANED, DELETED)
#: States in which the TS no longer updates the transformation at all.
TRANSFORMATION_REALLY_FINAL_STATES = (ARCHIVED, CLEANED, DELETED)

# --- AgentType ----------------------------------------------------------------------------------
AGENT_TYPE_MANUAL = "Manual"
AGENT_TYPE_AUTOMATIC = "Automatic"

# --- TransformationFiles.Status -----------------------------------------------------------------
UNUSED = "Unused"
ASSIGNED = "Assigned"
PROCESSED = "Processed"
PROBLEMATIC = "Problematic"
MAX_RESET = "MaxReset"
MISSING_IN_FC = "MissingInFC"
PROB_IN_FC = "ProbInFC"
REMOVED = "Removed"
UNUSED_INHERITED = "Unused-inherited"
ASSIGNED_INHERITED = "Assigned-inherited"
MAXRESET_INHERITED = "MaxReset-inherited"
PROCESSED_INHERITED = "Processed-inherited"
MOVED = "Moved"
#: Written by TSCatalog when a file leaves the FC (push mode).
FILE_DELETED = "Deleted"
#: Written on the parent by moveFilesToDerivedTransformation for files that were still Unused.
NOT_PROCESSED = "NotProcessed"

TRANSFORMATION_FILES_STATES = (
    UNUSED, ASSIGNED, PROCESSED, PROBLEMATIC, MAX_RESET, MISSING_IN_FC, PROB_IN_FC,
    UNUSED_INHERITED, ASSIGNED_INHERITED, MAXRESET_INHERITED, PROCESSED_INHERITED, MOVED,
)
#: Only files in these statuses may be put in a new task; any other status refuses the whole task.
ALLOWED_STATUS_FOR_TASKS = (UNUSED, PROB_IN_FC)
#: What the TransformationAgent reads each cycle (MissingInFC is added for Removal transformations).
FILES_TO_PROCESS_STATES = (UNUSED, PROB_IN_FC)
#: Operations/Transformations/FilesMaxResetCounter default.
FILES_MAX_RESET_COUNTER = 10
#: UsedSE / TargetSE of a file that is not in a task.
UNKNOWN_SE = "Unknown"

# --- TransformationTasks.ExternalStatus -----------------------------------------------------------
TASK_CREATED = "Created"
TASK_RESERVED = "Reserved"
TASK_SUBMITTED = "Submitted"
# Mirrored WMS job statuses (DIRACCommon JobStatus).
TASK_RECEIVED = "Received"
TASK_CHECKING = "Checking"
TASK_SCOUTING = "Scouting"
TASK_STAGING = "Staging"
TASK_WAITING = "Waiting"
TASK_MATCHED = "Matched"
TASK_RUNNING = "Running"
TASK_STALLED = "Stalled"
TASK_COMPLETING = "Completing"
TASK_COMPLETED = "Completed"
TASK_DONE = "Done"
TASK_FAILED = "Failed"
TASK_KILLED = "Killed"
TASK_DELETED = "Deleted"
# Mirrored RMS request statuses ("Assigned" is never copied to the task).
TASK_SCHEDULED = "Scheduled"
TASK_CANCELED = "Canceled"

TASK_STATES = (
    TASK_CREATED, TASK_RESERVED, TASK_SUBMITTED, TASK_RECEIVED, TASK_CHECKING, TASK_SCOUTING,
    TASK_STAGING, TASK_WAITING, TASK_MATCHED, TASK_RUNNING, TASK_STALLED, TASK_COMPLETING,
    TASK_COMPLETED, TASK_DONE, TASK_FAILED, TASK_KILLED, TASK_DELETED, TASK_SCHEDULED, TASK_CANCELED,
)
#: Task states after which the task never changes again.
TASK_FINAL_STATES = (TASK_DONE, TASK_FAILED, TASK_KILLED, TASK_DELETED, TASK_CANCELED)
#: getTasksToSubmit only takes Created tasks whose CreationTime is strictly older than this.
TASK_SUBMIT_MIN_AGE_S = 30.0
#: CheckReserved looks at tasks Reserved for longer than this.
TASK_RESERVED_TIMEOUT_S = 3600.0
#: Operations/Transformations/ExtendableTransfTypes default used by extendTransformation.
EXTENDABLE_TRANSFORMATION_TYPES = ("Simulation", "MCSimulation")
