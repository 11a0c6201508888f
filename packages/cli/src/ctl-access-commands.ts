// raftmqctl user | vhost | permissions | whoami: RabbitMQ's users, virtual hosts and permissions.
// A new password comes from --password-file, --password, or a prompt without echo (stdin when
// piped), and is never printed.
import type { Permissions } from "@raftmq/client";
import { type Command, Option } from "commander";
import { globals, UsageError, withClient } from "./ctl-context.ts";
import { readNewSecret, readSecretFile } from "./ctl-secret-input.ts";
import { printJson, printTable, println } from "./terminal-output.ts";

interface NewPasswordOptions {
  password?: string;
  passwordFile?: string;
  certificateOnly?: boolean;
}

function newPasswordOptions(command: Command): Command {
  return command
    .addOption(new Option("--password-file <path>", "read the password from this file (one line)").conflicts(["password", "certificateOnly"]))
    .addOption(new Option("--password <password>", "the password; other local users can read it in the process list: prefer --password-file or the prompt").conflicts("certificateOnly"))
    .option("--certificate-only", "no password: the user authenticates only with a client certificate whose common name is its name")
    .addHelpText("after", "\nWithout --password-file, --password or --certificate-only, the password is asked for twice without echo (or read from the first line of stdin when it is not a terminal).");
}

/** The password to set: "" for certificate-only. Read before connecting, so a prompt never waits on the network. */
async function newPassword(user: string, o: NewPasswordOptions): Promise<string> {
  if (o.certificateOnly === true) return "";
  if (o.passwordFile !== undefined) return readSecretFile(o.passwordFile);
  if (o.password !== undefined) {
    if (o.password === "") throw new UsageError("--password must not be empty; --certificate-only makes a user without a password");
    return o.password;
  }
  return readNewSecret(`New password for ${user}: `);
}

export function parseTags(raw: string): string[] {
  return [
    ...new Set(
      raw
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t !== ""),
    ),
  ];
}

function describeTags(tags: readonly string[]): string {
  return tags.length === 0 ? "no tags" : `tags: ${tags.join(", ")}`;
}

/** The broker matches with JavaScript regular expressions; a typo is better caught here than stored. */
export function checkPattern(option: string, pattern: string): string {
  try {
    new RegExp(pattern);
  } catch (err) {
    throw new UsageError(`${option} ${JSON.stringify(pattern)} is not a regular expression: ${err instanceof Error ? err.message : String(err)}`);
  }
  return pattern;
}

/** An empty pattern matches nothing: shown as "" so it is not mistaken for a missing cell. */
const shownPattern = (p: string) => (p === "" ? '""' : p);

function addUserCommands(program: Command): void {
  const user = program.command("user").description("add, delete and list users; set their passwords and tags (administrator only)");
  newPasswordOptions(
    user
      .command("add")
      .description("add a user")
      .argument("<name>")
      .option("--tags <list>", 'comma-separated tags: "administrator" may manage users, vhosts and permissions; "monitoring" marks monitoring tools; others are kept and ignored', ""),
  ).action(async (name: string, o: NewPasswordOptions & { tags: string }, cmd: Command) => {
    const password = await newPassword(name, o);
    const tags = parseTags(o.tags);
    await withClient(cmd, async (client) => {
      await client.addUser(name, password, tags);
      println(`user ${name} added (${describeTags(tags)}${password === "" ? ", certificate only" : ""})`);
    });
  });
  user
    .command("delete")
    .description("delete a user and its permissions")
    .argument("<name>")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.deleteUser(name);
        println(`user ${name} deleted`);
      });
    });
  newPasswordOptions(user.command("password").description("set a user's password, or turn password authentication off (--certificate-only)").argument("<name>")).action(
    async (name: string, o: NewPasswordOptions, cmd: Command) => {
      const password = await newPassword(name, o);
      await withClient(cmd, async (client) => {
        await client.changePassword(name, password);
        println(password === "" ? `password authentication of ${name} turned off` : `password of ${name} changed`);
      });
    },
  );
  user
    .command("tags")
    .description("replace a user's tags")
    .argument("<name>")
    .argument("<tags>", 'comma-separated tags ("administrator", "monitoring"); "" clears them')
    .action(async (name: string, raw: string, _o: unknown, cmd: Command) => {
      const tags = parseTags(raw);
      await withClient(cmd, async (client) => {
        await client.setUserTags(name, tags);
        println(`user ${name} has ${describeTags(tags)}`);
      });
    });
  user
    .command("list")
    .description("list users with their tags and whether they have a password")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const users = await client.listUsers();
        if (o.json === true) printJson(users);
        else printTable(["name", "tags", "password"], users.map((u) => [u.name, u.tags.join(", "), u.hasPassword ? "yes" : "no (certificate only)"]));
      });
    });
}

function addVhostCommands(program: Command): void {
  const vhost = program.command("vhost").description("add, delete and list virtual hosts (administrator only)");
  vhost
    .command("add")
    .description("add a virtual host")
    .argument("<name>")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.addVhost(name);
        println(`vhost ${name} added`);
      });
    });
  vhost
    .command("delete")
    .description("delete a virtual host with everything in it")
    .argument("<name>")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.deleteVhost(name);
        println(`vhost ${name} deleted`);
      });
    });
  vhost
    .command("list")
    .description("list virtual hosts")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const names = await client.listVhosts();
        if (o.json === true) printJson(names);
        else for (const n of names) println(n);
      });
    });
}

const PERMISSION_VHOST_HELP = 'the virtual host (default: the global --vhost, "/" unless set)';

function addPermissionCommands(program: Command): void {
  const permissions = program
    .command("permissions")
    .description("what users may do in virtual hosts: regular expressions over exchange and queue names (administrator only)");
  permissions
    .command("set")
    .description('set (replace) a user\'s permissions in a virtual host; "" matches nothing, ".*" everything')
    .argument("<user>")
    .option("--vhost <name>", PERMISSION_VHOST_HELP)
    .requiredOption("--configure <regex>", "exchanges and queues the user may declare and delete")
    .requiredOption("--write <regex>", "exchanges the user may publish to, and queues and exchanges it may bind to")
    .requiredOption("--read <regex>", "queues the user may consume from and purge, and exchanges it may bind from")
    .action(async (user: string, o: { vhost?: string; configure: string; write: string; read: string }, cmd: Command) => {
      const p: Permissions = {
        user,
        vhost: o.vhost ?? globals(cmd).vhost,
        configure: checkPattern("--configure", o.configure),
        write: checkPattern("--write", o.write),
        read: checkPattern("--read", o.read),
      };
      await withClient(cmd, async (client) => {
        await client.setPermissions(p);
        println(`permissions of ${user} in vhost ${p.vhost}: configure ${shownPattern(p.configure)}, write ${shownPattern(p.write)}, read ${shownPattern(p.read)}`);
      });
    });
  permissions
    .command("clear")
    .description("remove a user's permissions in a virtual host")
    .argument("<user>")
    .option("--vhost <name>", PERMISSION_VHOST_HELP)
    .action(async (user: string, o: { vhost?: string }, cmd: Command) => {
      const vhost = o.vhost ?? globals(cmd).vhost;
      await withClient(cmd, async (client) => {
        await client.clearPermissions(user, vhost);
        println(`permissions of ${user} in vhost ${vhost} cleared`);
      });
    });
  permissions
    .command("list")
    .description("list permissions, of every user in every virtual host unless filtered")
    .option("--user <name>", "only this user's")
    .option("--vhost <name>", "only those in this virtual host")
    .option("--json", "print JSON")
    .action(async (o: { user?: string; vhost?: string; json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const list = await client.listPermissions({ user: o.user, vhost: o.vhost });
        if (o.json === true) printJson(list);
        else printTable(["user", "vhost", "configure", "write", "read"], list.map((p) => [p.user, p.vhost, shownPattern(p.configure), shownPattern(p.write), shownPattern(p.read)]));
      });
    });
}

export function addAccessCommands(program: Command): void {
  addUserCommands(program);
  addVhostCommands(program);
  addPermissionCommands(program);
  program
    .command("whoami")
    .description("the user the cluster knows you as, its tags, and how it authenticated you")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const me = await client.whoAmI();
        if (o.json === true) printJson(me);
        else println(`${me.user} (${describeTags(me.tags)}), authenticated by ${me.mechanism}`);
      });
    });
}
