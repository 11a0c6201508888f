// PublishStream on the leader: requests in, one PublishResponse of confirms per request out.
// Confirms are sent after commit and apply; a request that fails validation gets NACKs at once.
import { vhostOf } from "./security/access-gate.ts";
import type * as grpc from "@grpc/grpc-js";
import { status as grpcStatus } from "@grpc/grpc-js";
import type { CommandResult } from "@raftmq/broker";
import { raftmq } from "@raftmq/proto";
import type { BrokerServiceContext } from "./broker-service.ts";
import { propose } from "./call-routing.ts";
import { toServiceError } from "./grpc-status.ts";
import { OverloadedError, ResourceAlarmError } from "./node-errors.ts";

type Command = raftmq.v1.Command.$Properties;

/** A retry the broker can no longer judge: neither acknowledged nor refused, it has a confirm status of its own. */
export function isOutcomeUnknown(result: CommandResult | undefined): boolean {
  return result !== undefined && !result.ok && result.error.code === "OUTCOME_UNKNOWN";
}

/** One Confirm per publish result; stateful failures become NACKs with the reason, except those of unknown outcome. */
export function confirmOf(result: CommandResult | undefined): raftmq.v1.Confirm.$Properties {
  const { ACK, NACK } = { ACK: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK, NACK: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_NACK };
  if (result === undefined) return { status: NACK, reason: "no result" };
  if (!result.ok && isOutcomeUnknown(result)) return { status: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_OUTCOME_UNKNOWN, reason: result.error.message };
  if (!result.ok) return { status: NACK, reason: `${result.error.code}: ${result.error.message}` };
  if (result.kind !== "publish") return { status: NACK, reason: `unexpected ${result.kind} result` };
  if (result.rejectedBy !== undefined) return { status: NACK, routedQueues: result.routedQueues, duplicate: result.duplicate, reason: `REJECT_PUBLISH queue=${result.rejectedBy}` };
  if (result.returned) return { status: NACK, duplicate: result.duplicate, reason: "NO_ROUTE" };
  return { status: ACK, routedQueues: result.routedQueues, duplicate: result.duplicate };
}

/**
 * Messages in, confirms out, on the leader. Each response names its request's client sequence;
 * a request that fails validation is answered at once, the others after commit, in order.
 */
export function publishStream(ctx: BrokerServiceContext, call: grpc.ServerDuplexStream<raftmq.v1.PublishRequest, raftmq.v1.PublishResponse.$Properties>): void {
  const { driver, builder } = ctx;
  let ended = false;
  let inputDone = false;
  let outstanding = 0;
  const fail = (err: unknown) => {
    if (ended) return;
    ended = true;
    // Requests still awaiting confirms end with the stream: whatever the error, they may have been applied.
    call.emit("error", toServiceError(err, outstanding > 0 ? "unknown" : undefined));
  };
  const maybeFinish = () => {
    if (!ended && inputDone && outstanding === 0) {
      ended = true;
      call.end();
    }
  };
  call.on("data", (r: raftmq.v1.PublishRequest) => {
    if (ended) return;
    // The leader's own alarm: the stream ends, and its publisher retries once it clears.
    const blocked = ctx.publishBlocked?.() ?? "";
    if (blocked !== "") {
      fail(new ResourceAlarmError(blocked));
      return;
    }
    if (outstanding >= ctx.maxStreamWindow) {
      fail(new OverloadedError(`more than ${ctx.maxStreamWindow} publish requests awaiting confirms on one stream; wait for confirms before sending more`));
      return;
    }
    let commands: Command[];
    try {
      commands = builder.publish(r, vhostOf(call.metadata));
    } catch (err) {
      // Nothing of this request was proposed, so its outcome is certain: answer it with NACKs
      // and keep the stream, whose other requests may already be committed.
      const { code, details } = toServiceError(err);
      const reason = `${grpcStatus[code] ?? code}: ${details}`;
      const confirms = (r.messages ?? []).map(() => ({ status: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_NACK, reason }));
      call.write({ confirms: confirms.length > 0 ? confirms : [{ status: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_NACK, reason }], clientSequence: r.clientSequence ?? 0 });
      return;
    }
    outstanding++;
    propose(driver, commands).then(
      (results) => {
        outstanding--;
        ctx.metrics?.published.inc(commands.length);
        if (ended) return;
        call.write({ confirms: results.map(confirmOf), clientSequence: r.clientSequence ?? 0 });
        maybeFinish();
      },
      (err: unknown) => {
        outstanding--;
        fail(err);
      },
    );
  });
  call.on("end", () => {
    inputDone = true;
    maybeFinish();
  });
  call.on("cancelled", () => {
    ended = true;
  });
  call.on("error", () => {
    ended = true;
  });
}
