// How raftmqctl prints: tables for people, JSON for scripts, errors on stderr.
import Table from "cli-table3";

export function printTable(head: string[], rows: (string | number | boolean)[][]): void {
  const table = new Table({ head, style: { head: [], border: [] } });
  for (const row of rows) table.push(row.map((cell) => String(cell)));
  process.stdout.write(`${table.toString()}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function println(line = ""): void {
  process.stdout.write(`${line}\n`);
}
