// One amqplib connection as the AMQP chaos workload holds it: opened with a bounded handshake,
// watched for its end, every call on it bounded, and given up within a bounded time whatever the
// node does (a reset socket, a frozen process, a connection.close nobody answers).

import type { Socket } from "node:net";
import amqp, { type ChannelModel } from "amqplib";

/** How long connection.close may take before the socket is cut. */
const CLOSE_TIMEOUT_MS = 2000;

export class AmqpLink {
  readonly model: ChannelModel;
  /** Resolves when the connection has ended, with amqplib's error unless this side closed it. */
  readonly ended: Promise<Error | undefined>;
  #open = true;

  private constructor(model: ChannelModel) {
    this.model = model;
    // amqplib emits "error" before "close" on a failure; "close" carries the error too.
    model.on("error", () => {});
    this.ended = new Promise((resolve) =>
      model.once("close", (err?: Error) => {
        this.#open = false;
        resolve(err);
      }),
    );
  }

  /** Connects to `url`; the socket connect and the AMQP handshake together get `timeoutMs`. */
  static async open(url: string, timeoutMs: number): Promise<AmqpLink> {
    return new AmqpLink(await amqp.connect(url, { timeout: timeoutMs }));
  }

  get open(): boolean {
    return this.#open;
  }

  /** `call`'s result, or a rejection once the connection ends or `timeoutMs` passes, so that a stuck node cannot hang a client. */
  async within<T>(call: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    const ended = this.ended.then((err) => Promise.reject(new Error(`${what}: the connection ended${err === undefined ? "" : ` (${err.message})`}`)));
    try {
      return await Promise.race([call, timedOut, ended]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Closes the connection; a node that does not answer in time has its socket cut. Either way
   * amqplib closes every channel, which calls back each unconfirmed publish with an error.
   */
  async close(): Promise<void> {
    if (!this.#open) return;
    await this.#settle(this.model.close().catch(() => undefined));
    if (!this.#open) return;
    // An error on the socket is what makes amqplib close its channels; a bare destroy is not.
    socketOf(this.model)?.destroy(new Error("connection given up: the node did not answer connection.close"));
    await this.#settle(this.ended);
  }

  /** Waits for `p`, the end of the connection, or CLOSE_TIMEOUT_MS. */
  async #settle(p: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p, this.ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }
}

/** The socket under an amqplib connection (amqplib's types do not name it). */
function socketOf(model: ChannelModel): Socket | undefined {
  return (model.connection as unknown as { stream?: Socket }).stream;
}
