// The other members' resource alarms, as RabbitMQ's are cluster-wide: a node whose disk or
// memory runs out must not be fed by publishes that another node takes. Every node asks each
// member for its alarms (Cluster.Status) once per alarm check; while any member has one raised,
// this node refuses publishes and blocks its AMQP publishers too. A member that does not answer
// keeps what it last said for a few checks, then counts as having none: a node that is down
// cannot take writes anyway, and must not stop the others from taking them.

export interface MemberAlarms {
  alarms: string[];
  detail: string;
}

export interface ClusterAlarmOptions {
  /** The other members, by id. */
  peers(): number[];
  /** A member's alarms now (its Cluster.Status). */
  ask(peerId: number): Promise<MemberAlarms>;
  now(): number;
  /** How long an unanswered member's last alarms stand. */
  staleMs: number;
  /** The set of members with alarms changed. */
  changed(): void;
}

export class ClusterAlarms {
  private readonly raised = new Map<number, { detail: string; at: number }>();
  private polling = false;

  constructor(private readonly o: ClusterAlarmOptions) {}

  /** The other members' alarms and why, for an error message; "" when none has one. */
  get reason(): string {
    const now = this.o.now();
    const parts: string[] = [];
    for (const [id, a] of this.raised) if (now - a.at <= this.o.staleMs) parts.push(`node ${id}: ${a.detail}`);
    return parts.join("; ");
  }

  /** Asks every other member once. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    const before = this.reason;
    try {
      const peers = this.o.peers();
      for (const id of this.raised.keys()) if (!peers.includes(id)) this.raised.delete(id);
      await Promise.all(
        peers.map(async (id) => {
          try {
            const answer = await this.o.ask(id);
            if (answer.alarms.length > 0) this.raised.set(id, { detail: answer.detail, at: this.o.now() });
            else this.raised.delete(id);
          } catch {
            // Unanswered: what it said last stands until it is stale.
          }
        }),
      );
    } finally {
      this.polling = false;
    }
    if (this.reason !== before) this.o.changed();
  }
}
