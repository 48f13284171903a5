package pipeline

// QueueWorkflows is the queue of workflow wakes (the engine's timed steps).
const QueueWorkflows = "workflows"
