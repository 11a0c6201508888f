// Prometheus metrics of one node, in a registry of its own (no process-wide default registry, so
// several nodes can live in one process). Gauges that mirror state are read at scrape time. The
// registry also carries prom-client's process metrics (CPU, resident memory, V8 heap, GC pauses,
// event-loop lag), which describe the whole process.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { anonymousMemoryBytes } from "./resource-alarms.ts";

export interface MetricsSource {
  raft(): { term: number; role: string; commit: number; applied: number; lastIndex: number; snapshotIndex: number; leaderId: number };
  queues(): { vhost: string; name: string; ready: number; unacked: number; consumers: number }[];
  consumerStreams(): number;
}

const ROLES = ["follower", "pre-candidate", "candidate", "leader"] as const;

export class NodeMetrics {
  readonly registry = new Registry();
  readonly proposals: Counter;
  readonly proposedCommands: Counter;
  readonly persistSeconds: Histogram;
  readonly snapshotSeconds: Histogram;
  readonly published: Counter;
  readonly delivered: Counter;
  readonly acked: Counter;
  readonly consumeResumed: Counter;
  readonly amqpConnectionsOpened: Counter;
  readonly amqpConnectionsClosed: Counter;
  /** The resource alarms raised now. */
  alarms: ReadonlySet<string> = new Set();
  /** Open AMQP connections, read at scrape time from the AMQP server once it exists. */
  amqpConnections: () => number = () => 0;
  readonly appliedEntries: Counter;
  /** The body store's counts, read at scrape time once the store is open. */
  bodyStore: () => {
    written: number;
    writtenBytes: number;
    deleted: number;
    missing: number;
    compactions: number;
    segments: number;
    segmentsDropped: number;
    readAhead: number;
    readAheadHits: number;
  } = () => ({
    written: 0,
    writtenBytes: 0,
    deleted: 0,
    missing: 0,
    compactions: 0,
    segments: 0,
    segmentsDropped: 0,
    readAhead: 0,
    readAheadHits: 0,
  });

  constructor(source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: (s: ReturnType<MetricsSource["raft"]>) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(source.raft()));
        },
      });
    gauge("raftmq_raft_term", "Current Raft term", (s) => s.term);
    gauge("raftmq_raft_commit_index", "Highest log index known committed", (s) => s.commit);
    gauge("raftmq_raft_applied_index", "Highest log index applied to the state machine", (s) => s.applied);
    gauge("raftmq_raft_last_index", "Last index of the local log", (s) => s.lastIndex);
    gauge("raftmq_raft_snapshot_index", "Index of the latest local snapshot", (s) => s.snapshotIndex);
    gauge("raftmq_raft_leader_id", "The leader this node knows (0: none)", (s) => s.leaderId);
    const bodyGauge = (name: string, help: string, read: (b: ReturnType<NodeMetrics["bodyStore"]>) => number) => {
      const metrics = this;
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(metrics.bodyStore()));
        },
      });
    };
    new Gauge({
      name: "raftmq_process_anonymous_memory_bytes",
      help: "Resident memory that no file backs (RssAnon; the memory alarm's reading): the resident size less mapped file pages such as LevelDB's tables",
      registers,
      collect() {
        this.set(anonymousMemoryBytes());
      },
    });
    bodyGauge("raftmq_body_store_writes", "Message bodies written to this node's body store since it started", (b) => b.written);
    bodyGauge("raftmq_body_store_written_bytes", "Bytes of message bodies written to this node's body store since it started", (b) => b.writtenBytes);
    bodyGauge("raftmq_body_store_deletes", "Message body keys deleted from this node's body store since it started (a range cleared counts its whole span)", (b) => b.deleted);
    bodyGauge("raftmq_body_store_compactions", "Ranges of deleted bodies this node's body store compacted to free their disk space, since it started", (b) => b.compactions);
    bodyGauge("raftmq_body_store_segments", "Segments (LevelDB databases, each a run of body keys) in this node's body store", (b) => b.segments);
    bodyGauge("raftmq_body_store_segments_dropped", "Segments of this node's body store dropped whole, none of their bodies referred to any more, since it started", (b) => b.segmentsDropped);
    bodyGauge("raftmq_body_read_ahead", "Bodies this node read from its body store ahead of their delivery to a local consumer, since it started", (b) => b.readAhead);
    bodyGauge("raftmq_body_read_ahead_hits", "Deliveries to local consumers that found their body read ahead, since the node started", (b) => b.readAheadHits);
    bodyGauge("raftmq_body_store_missing", "Bodies the state refers to that this node's body store lacks and could not fetch from a peer", (b) => b.missing);
    new Gauge({
      name: "raftmq_raft_role",
      help: "1 for this node's current Raft role",
      labelNames: ["role"],
      registers,
      collect() {
        const role = source.raft().role;
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: "raftmq_queue_messages",
      help: "Messages per queue, ready or unacknowledged, as this node has applied them",
      labelNames: ["vhost", "queue", "state"],
      registers,
      collect() {
        this.reset();
        for (const q of source.queues()) {
          this.set({ vhost: q.vhost, queue: q.name, state: "ready" }, q.ready);
          this.set({ vhost: q.vhost, queue: q.name, state: "unacked" }, q.unacked);
        }
      },
    });
    new Gauge({
      name: "raftmq_queue_consumers",
      help: "Consumers per queue",
      labelNames: ["vhost", "queue"],
      registers,
      collect() {
        this.reset();
        for (const q of source.queues()) this.set({ vhost: q.vhost, queue: q.name }, q.consumers);
      },
    });
    new Gauge({
      name: "raftmq_consumer_streams",
      help: "Consume streams attached to this node",
      registers,
      collect() {
        this.set(source.consumerStreams());
      },
    });
    this.proposals = new Counter({ name: "raftmq_proposals_total", help: "Log entries proposed by this node as leader", registers });
    this.proposedCommands = new Counter({ name: "raftmq_proposed_commands_total", help: "Commands proposed by this node as leader", registers });
    this.appliedEntries = new Counter({ name: "raftmq_applied_entries_total", help: "Log entries applied", registers });
    this.persistSeconds = new Histogram({
      name: "raftmq_persist_seconds",
      help: "Time of one synced storage write (append + fsync) per Raft Ready",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.snapshotSeconds = new Histogram({
      name: "raftmq_snapshot_seconds",
      help: "Time to take and store one snapshot",
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.published = new Counter({ name: "raftmq_published_total", help: "Messages published (applied on this node as leader)", registers });
    this.delivered = new Counter({ name: "raftmq_delivered_total", help: "Deliveries sent to local consumers", registers });
    this.acked = new Counter({ name: "raftmq_acked_total", help: "Deliveries acknowledged through this node", registers });
    this.consumeResumed = new Counter({
      name: "raftmq_consume_streams_resumed_total",
      help: "Client Consume streams held by this node whose consumers moved to a session on a new leader",
      registers,
    });
    const metrics = this;
    new Gauge({
      name: "raftmq_amqp_connections",
      help: "Open AMQP 0-9-1 client connections on this node",
      registers,
      collect() {
        this.set(metrics.amqpConnections());
      },
    });
    new Gauge({
      name: "raftmq_resource_alarm",
      help: "1 while this node's resource alarm is raised (publishers blocked), by resource",
      labelNames: ["resource"],
      registers,
      collect() {
        for (const r of ["memory", "disk"]) this.set({ resource: r }, metrics.alarms.has(r) ? 1 : 0);
      },
    });
    this.amqpConnectionsOpened = new Counter({ name: "raftmq_amqp_connections_opened_total", help: "AMQP 0-9-1 connections that passed connection.open on this node", registers });
    this.amqpConnectionsClosed = new Counter({
      name: "raftmq_amqp_connection_errors_total",
      help: "AMQP 0-9-1 connections this node closed with an error, by reply code (403 refused login, 501 bad frame ...)",
      labelNames: ["code"],
      registers,
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
