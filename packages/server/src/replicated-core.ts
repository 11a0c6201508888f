// The parts of a node that decide what a committed command does and when its caller is answered,
// without the process around them (gRPC, timers, disk): for whole-node simulations that must run
// the node's own rules, not copies of them.
export { CommandBuilder } from "./command-builder.ts";
export { NodeUnavailableError, OutcomeUnknownError } from "./node-errors.ts";
export { type AppliedBatch, NodeState } from "./node-state.ts";
export { type ProposalOutcome, ProposalPipeline } from "./proposal-pipeline.ts";
