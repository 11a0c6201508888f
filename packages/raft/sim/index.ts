export { FAULT_PROFILES, type FaultProfile, profileForSeed, profileNamed } from "./fault-profiles.ts";
export { SafetyViolation } from "./safety-checker.ts";
export { type SimStorage, type StorageFactory, memoryStorageFactory } from "./sim-storage.ts";
export { type SimOptions, type SimResult, SimulationFailure, replayCommand, runSimulation } from "./simulation.ts";
export { SimNetwork } from "./sim-network.ts";
