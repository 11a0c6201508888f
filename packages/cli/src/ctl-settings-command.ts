// raftmqctl settings [set name=value ...]: the cluster settings in force, and changes to them
// through the log (Cluster.SetSettings), so every node holds the same ones.
import { CLUSTER_SETTING_NAMES, type ClusterSettingValues } from "@raftmq/client";
import { type Command, Option } from "commander";
import { positiveInteger, UsageError, withClient } from "./ctl-context.ts";
import { printJson, printTable, println } from "./terminal-output.ts";

/** `name=value` pairs as settings; a name twice, an unknown name or a value that is no integer is refused. */
export function parseSettingAssignments(pairs: readonly string[]): ClusterSettingValues {
  const out: ClusterSettingValues = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z]+)=(\d+)$/.exec(pair.trim());
    if (m === null) throw new UsageError(`${JSON.stringify(pair)} is not name=value with a whole number, e.g. maxPropertyStringBytes=1024`);
    const name = m[1] ?? "";
    const value = Number(m[2]);
    if (!CLUSTER_SETTING_NAMES.includes(name)) throw new UsageError(`no cluster setting ${JSON.stringify(name)}; the settings are ${CLUSTER_SETTING_NAMES.join(", ")}`);
    if (!Number.isSafeInteger(value)) throw new UsageError(`${name}=${m[2]} is too large`);
    if (name in out) throw new UsageError(`${name} is given twice`);
    out[name] = value;
  }
  if (Object.keys(out).length === 0) throw new UsageError("give at least one name=value");
  return out;
}

export function addSettingsCommand(program: Command): void {
  const settings = program
    .command("settings")
    .description("the cluster settings in force (limits on requests, queues, consumers ...), the same on every node; `settings set` changes them")
    .option("--json", "print them as JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const s = await client.settings();
        if (o.json === true) {
          printJson(s);
          return;
        }
        printTable(
          ["setting", "value"],
          CLUSTER_SETTING_NAMES.map((name) => [name, s.settings[name] ?? "-"]),
        );
        println(`state-machine version ${s.machineVersion} (node ${s.nodeId} applies up to ${s.maxMachineVersion}); see docs/input-limits.md for what each bounds`);
      });
    });
  settings
    .command("set")
    .description("change settings through the log, e.g. `settings set maxPropertyStringBytes=1024 maxDeaths=16`; the rest keep their values (administrator only)")
    .argument("<name=value...>", `settings to change: ${CLUSTER_SETTING_NAMES.join(", ")}`)
    .addOption(new Option("--machine-version <n>", "the state-machine version the change is meant under (default: the one in force); a higher one moves the cluster to it").argParser(positiveInteger("--machine-version")))
    .option("--json", "print the settings in force afterwards as JSON")
    .action(async (pairs: string[], o: { machineVersion?: number; json?: boolean }, cmd: Command) => {
      const changes = parseSettingAssignments(pairs);
      await withClient(cmd, async (client) => {
        const r = await client.setSettings(changes, o.machineVersion);
        if (o.json === true) {
          printJson(r);
          return;
        }
        for (const name of Object.keys(changes)) println(`${name} = ${r.settings[name] ?? "?"}`);
        println(`in force on every node from this entry on (state-machine version ${r.machineVersion})`);
      });
    });
}
