export { type FaultKind, type NemesisOptions, type NemesisStats, type PowerLossTarget, PowerLossNemesis } from "./power-loss-nemesis.ts";
export { POWER_LOSS_DEFAULTS, type PowerLossOptions, type PowerLossResult, runPowerLoss, SimSetupError } from "./power-loss-sim.ts";
export { DiskError, type DiskOp, type DiskWrite, type PowerLossDamage, SimDisk } from "./sim-disk.ts";
export { historyLines, SimHistory } from "./sim-history.ts";
export { NodeDownError, SIM_BUGS, type SimBug, SimNode } from "./sim-node.ts";
