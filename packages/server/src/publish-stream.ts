// PublishStream on the leader: requests in, one PublishResponse of confirms per request out, in
// request order. Confirms are sent after commit and apply.
import type * as grpc from "@grpc/grpc-js";
import type { CommandResult } from "@raftmq/broker";
import { raftmq } from "@raftmq/proto";
import type { BrokerServiceContext } from "./broker-service.ts";
import { propose } from "./call-routing.ts";
import { toServiceError } from "./grpc-status.ts";
import { OverloadedError } from "./node-errors.ts";

type Command = raftmq.v1.Command.$Properties;

/** One Confirm per publish result; stateful failures become NACKs with the reason. */
export function confirmOf(result: CommandResult | undefined): raftmq.v1.Confirm.$Properties {
  const { ACK, NACK } = { ACK: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK, NACK: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_NACK };
  if (result === undefined) return { status: NACK, reason: "no result" };
  if (!result.ok) return { status: NACK, reason: `${result.error.code}: ${result.error.message}` };
  if (result.kind !== "publish") return { status: NACK, reason: `unexpected ${result.kind} result` };
  if (result.rejectedBy !== undefined) return { status: NACK, routedQueues: result.routedQueues, duplicate: result.duplicate, reason: `REJECT_PUBLISH queue=${result.rejectedBy}` };
  if (result.returned) return { status: NACK, duplicate: result.duplicate, reason: "NO_ROUTE" };
  return { status: ACK, routedQueues: result.routedQueues, duplicate: result.duplicate };
}

/** Messages in, confirms out, on the leader. Confirms leave in request order. */
export function publishStream(ctx: BrokerServiceContext, call: grpc.ServerDuplexStream<raftmq.v1.PublishRequest, raftmq.v1.PublishResponse.$Properties>): void {
  const { driver, builder } = ctx;
  let ended = false;
  let inputDone = false;
  let outstanding = 0;
  const fail = (err: unknown) => {
    if (ended) return;
    ended = true;
    call.emit("error", toServiceError(err));
  };
  const maybeFinish = () => {
    if (!ended && inputDone && outstanding === 0) {
      ended = true;
      call.end();
    }
  };
  call.on("data", (r: raftmq.v1.PublishRequest) => {
    if (ended) return;
    if (outstanding >= ctx.maxStreamWindow) {
      fail(new OverloadedError(`more than ${ctx.maxStreamWindow} publish requests awaiting confirms on one stream; wait for confirms before sending more`));
      return;
    }
    let commands: Command[];
    try {
      commands = builder.publish(r);
    } catch (err) {
      fail(err);
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
