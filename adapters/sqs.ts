// SQS (standard or FIFO queues) through @aws-sdk/client-sqs, against AWS, LocalStack or the embedded
// fauxqs. Batches of 10 go out concurrently; every API request is counted so runs can report cost.
//
// Settings read from `options.settings` (all optional):
//   region          AWS region; default `us-east-1` with an endpoint URL, else AWS_REGION via the SDK.
//   endpointKind    `embedded` | `localstack` | `aws` | `other`, from resolveSqs; default from the URL.
//   endpointVersion What answers, e.g. `fauxqs 1.9.2`; shown by describe(); default `aws` / `unknown`.
//   maxSockets      Keep-alive sockets per connection (all duplicates share them); default 64.
//   maxAttempts     SDK attempts per request, retries of throttling and network errors; default 3.
//   groupId         FIFO MessageGroupId; default one per handle (`handle-N`).
//   groups          FIFO: spread each handle's messages round-robin over this many groups
//                   (`${groupId}-0` …), so several consumers can work at once; default 1.
//
// Credentials: AWS (no endpoint URL) uses the SDK's default chain. An endpoint of kind `embedded` or
// `localstack` gets the fixed pair test/test, so real keys are never sent to an emulator. Any other
// endpoint URL (an https:// SQS-compatible service, an external emulator) uses the default chain when
// AWS_ACCESS_KEY_ID or AWS_PROFILE is set, else test/test. Keys never appear in messages or results.
//
// A queue this connection prepared that vanishes mid-run (an in-memory emulator restarted) is made
// again on the first publish or receive that finds it missing; that call still fails and is counted.

import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SetQueueAttributesCommand,
  SQSClient,
  type BatchResultErrorEntry,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import {
  BrokerError,
  PartialSettleError,
  type Broker,
  type BrokerAdapter,
  type BrokerCapabilities,
  type BrokerInfo,
  type BrokerOptions,
  type OutgoingMessage,
  type QueueDepth,
  type QueueSpec,
  type ReceivedMessage,
  type ReceiveOptions,
} from '../src/broker.ts';
import { redactUrl } from '../src/redact.ts';
import { sqsServerFacts } from './sqs-registry.ts';
import type { RequestCounting } from '../src/broker.ts';
export { isRequestCounting, type RequestCounting } from '../src/broker.ts';

const ADAPTER = 'sqs';
const MAX_BATCH_ENTRIES = 10;
/** SQS limit on one message and on the sum of one batch. */
const MAX_PAYLOAD_BYTES = 262_144;
const MAX_DELAY_S = 900;
const MAX_WAIT_S = 20;
const MAX_VISIBILITY_S = 43_200;
const MAX_NAME_CHARS = 80;
/** Attempts for entries that fail inside a batch (the whole request has its own SDK retries). */
const BATCH_ATTEMPTS = 5;
const BATCH_BACKOFF_MS = 50;
/** Longest purge() drains by receive+delete when SQS refuses a second PurgeQueue within 60 s. */
const PURGE_DRAIN_MS = 30_000;
const BILLING_CHUNK_BYTES = 65_536;
const DEFAULT_MAX_SOCKETS = 64;
/** AWS error names that mean the credentials were refused, not the request. */
const AUTH_ERRORS = new Set([
  'InvalidClientTokenId', 'UnrecognizedClientException', 'SignatureDoesNotMatch', 'IncompleteSignature', 'InvalidAccessKeyId',
  'MissingAuthenticationToken', 'ExpiredToken', 'ExpiredTokenException', 'AccessDenied', 'AccessDeniedException',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED',
]);

type Mode = 'standard' | 'fifo';
type EndpointKind = BrokerInfo['endpointKind'];

const STANDARD: BrokerCapabilities = {
  delivery: 'at-least-once',
  delay: true,
  maxDelayMs: MAX_DELAY_S * 1000,
  deadLetter: true,
  visibilityTimeout: true,
  nackDelay: true,
  ordering: 'none',
  maxBatchSize: MAX_BATCH_ENTRIES,
  maxPayloadBytes: MAX_PAYLOAD_BYTES,
  // A nack sets the visibility timeout (ChangeMessageVisibility), whose limit is 12 h, not DelaySeconds' 15 min.
  maxNackDelayMs: MAX_VISIBILITY_S * 1000,
  delayGranularity: { ms: 1000, says: 'SQS takes DelaySeconds in whole seconds' },
  nackDelayGranularity: { ms: 1000, says: 'SQS takes retry delays (ChangeMessageVisibility) in whole seconds' },
  sharedAcrossProcesses: true,
};

/** FIFO queues keep order within a message group and take no per-message delay (only a queue-level one). */
const FIFO: BrokerCapabilities = { ...STANDARD, ordering: 'per-group', delay: false, maxDelayMs: 0 };

export const sqsAdapter: BrokerAdapter = {
  name: ADAPTER,
  aliases: ['SQS'],
  modes: ['standard', 'fifo'],
  defaultMode: 'standard',
  capabilities(mode: string): BrokerCapabilities {
    return parseMode(mode, 'capabilities') === 'fifo' ? FIFO : STANDARD;
  },
  async open(options: BrokerOptions): Promise<Broker> {
    const connection = new SqsConnection(resolveConfig(options));
    const broker = new SqsBroker(connection);
    try {
      // Reach the endpoint now, so a wrong URL or missing credentials fail at open, within the timeout.
      await connection.client.send(new ListQueuesCommand({ QueueNamePrefix: connection.config.namespace, MaxResults: 1 }), {
        abortSignal: AbortSignal.timeout(options.commandTimeoutMs),
      });
    } catch (error) {
      await broker.close();
      throw connection.wrap('open', undefined, error);
    }
    return broker;
  },
  ...sqsServerFacts,
};

interface SqsConfig {
  readonly namespace: string;
  readonly mode: Mode;
  readonly url: string | undefined;
  readonly region: string;
  /** The endpoint as shown: the URL, or the AWS regional one, without secrets. */
  readonly endpoint: string;
  readonly endpointKind: EndpointKind;
  readonly endpointVersion: string;
  readonly commandTimeoutMs: number;
  readonly maxSockets: number;
  readonly maxAttempts: number | undefined;
  readonly groupId: string | undefined;
  readonly groups: number;
}

function resolveConfig(options: BrokerOptions): SqsConfig {
  const settings = options.settings ?? {};
  const mode = parseMode(options.mode ?? 'standard', 'open');
  const region = stringSetting(settings, 'region') ?? (options.url !== undefined ? 'us-east-1' : process.env['AWS_REGION']);
  if (region === undefined || region === '') {
    throw new BrokerError(ADAPTER, 'open', 'no AWS region: set AWS_REGION (or settings.region)');
  }
  const kindSetting = stringSetting(settings, 'endpointKind');
  const kinds: readonly EndpointKind[] = ['local', 'embedded', 'docker', 'localstack', 'aws', 'other'];
  const endpointKind = kinds.find((kind) => kind === kindSetting) ?? (options.url === undefined ? 'aws' : 'other');
  const maxSockets = numberSetting(settings, 'maxSockets') ?? DEFAULT_MAX_SOCKETS;
  const maxAttempts = numberSetting(settings, 'maxAttempts');
  const groups = numberSetting(settings, 'groups') ?? 1;
  if (!Number.isInteger(groups) || groups < 1) {
    throw new BrokerError(ADAPTER, 'open', `settings.groups must be a whole number of at least 1, not ${groups}`);
  }
  if (!Number.isInteger(maxSockets) || maxSockets < 1) {
    throw new BrokerError(ADAPTER, 'open', `settings.maxSockets must be a whole number of at least 1, not ${maxSockets}`);
  }
  if (maxAttempts !== undefined && (!Number.isInteger(maxAttempts) || maxAttempts < 1)) {
    throw new BrokerError(ADAPTER, 'open', `settings.maxAttempts must be a whole number of at least 1, not ${maxAttempts}`);
  }
  return {
    namespace: options.namespace,
    mode,
    url: options.url,
    region,
    endpoint: redactUrl(options.url ?? `https://sqs.${region}.amazonaws.com`),
    endpointKind,
    endpointVersion: stringSetting(settings, 'endpointVersion') ?? (options.url === undefined ? 'aws' : 'unknown'),
    commandTimeoutMs: options.commandTimeoutMs,
    maxSockets,
    maxAttempts,
    groupId: stringSetting(settings, 'groupId'),
    groups,
  };
}

/** The queue URLs behind one logical queue name. */
interface QueueUrls {
  readonly name: string;
  readonly url: string;
  readonly dlqName: string;
  /** `undefined` when the queue has no dead-letter queue. */
  readonly dlqUrl: string | undefined;
}

/** One SQSClient and its sockets, shared by a handle and its duplicates; destroyed with the last one. */
class SqsConnection {
  readonly config: SqsConfig;
  readonly client: SQSClient;
  /** Prepared or looked-up queues by logical name; a promise so concurrent look-ups share one request. */
  readonly queues = new Map<string, Promise<QueueUrls>>();
  /** How each queue was prepared, to make it again if it vanishes; logical name -> spec. */
  readonly specs = new Map<string, QueueSpec>();
  /** Re-creations in progress, so concurrent failures share one. */
  readonly recreating = new Map<string, Promise<void>>();
  readonly counts: Record<string, number> = {};
  billed = 0;
  #handles = 0;
  #nextHandle = 0;
  readonly #agents: { http: HttpAgent; https: HttpsAgent };

  constructor(config: SqsConfig) {
    this.config = config;
    this.#agents = {
      http: new HttpAgent({ keepAlive: true, maxSockets: config.maxSockets }),
      https: new HttpsAgent({ keepAlive: true, maxSockets: config.maxSockets }),
    };
    // Node 20 is what the project pins; the SDK's one-time notice about Node 22 is noise in every run.
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    this.client = new SQSClient({
      region: config.region,
      ...(config.url !== undefined
        ? { endpoint: config.url, ...(usesOwnCredentials(config) ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }) }
        : {}),
      ...(config.maxAttempts !== undefined ? { maxAttempts: config.maxAttempts } : {}),
      requestHandler: new NodeHttpHandler({
        httpAgent: this.#agents.http,
        httpsAgent: this.#agents.https,
        connectionTimeout: config.commandTimeoutMs,
        requestTimeout: config.commandTimeoutMs,
        throwOnRequestTimeout: true,
      }),
    });
    // In the deserialize step, below the retry middleware: runs once per attempt actually sent.
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const action = (context.commandName ?? 'Unknown').replace(/Command$/, '');
        this.counts[action] = (this.counts[action] ?? 0) + 1;
        let units = 1;
        try {
          const result = await next(args);
          units = billedUnits(action, args.input, result.output);
          return result;
        } finally {
          this.billed += units;
        }
      },
      { step: 'deserialize', name: 'brokerbenchRequestCounter' },
    );
  }

  /** Registers a new handle; returns its number (FIFO group ids use it). */
  acquire(): number {
    this.#handles++;
    return this.#nextHandle++;
  }

  release(): void {
    this.#handles--;
    if (this.#handles > 0) return;
    this.client.destroy();
    // Agents passed in are not the SDK's to destroy.
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  /** SQS name for a logical queue: `${namespace}-${queue}`, characters outside [A-Za-z0-9_-] turned into `-`. */
  names(queue: string, operation: string): { name: string; dlqName: string } {
    const base = `${this.config.namespace}-${queue}`.replace(/[^A-Za-z0-9_-]/g, '-');
    const suffix = this.config.mode === 'fifo' ? '.fifo' : '';
    const name = `${base}${suffix}`;
    if (name.length > MAX_NAME_CHARS) {
      throw new BrokerError(
        ADAPTER,
        operation,
        `queue name ${name} is ${name.length} characters; SQS allows ${MAX_NAME_CHARS}: use a shorter namespace or queue name`,
      );
    }
    return { name, dlqName: `${base}-dlq${suffix}` };
  }

  /** URLs of a queue, from the cache or looked up once (GetQueueUrl) if another process prepared it. */
  urls(queue: string, operation: string): Promise<QueueUrls> {
    const cached = this.queues.get(queue);
    if (cached !== undefined) return cached;
    const { name, dlqName } = this.names(queue, operation);
    const lookup = (async (): Promise<QueueUrls> => {
      const url = await this.queueUrl(name);
      if (url === undefined) {
        throw new BrokerError(ADAPTER, operation, `queue ${name}: does not exist (QueueDoesNotExist); call prepare first`);
      }
      const dlqUrl = dlqName.length <= MAX_NAME_CHARS ? await this.queueUrl(dlqName) : undefined;
      return { name, url, dlqName, dlqUrl };
    })();
    this.queues.set(queue, lookup);
    lookup.catch(() => this.queues.delete(queue));
    return lookup.catch((error: unknown) => {
      throw this.wrap(operation, name, error);
    });
  }

  /** The URL of a queue by its SQS name; `undefined` if it does not exist. */
  async queueUrl(name: string): Promise<string | undefined> {
    try {
      return (await this.client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    } catch (error) {
      if (isQueueMissing(error)) return undefined;
      throw error;
    }
  }

  /** Any failure as a BrokerError naming the operation, the queue and the AWS error code. */
  wrap(operation: string, queueName: string | undefined, error: unknown): BrokerError {
    if (error instanceof BrokerError) return error;
    const where = queueName === undefined ? '' : `queue ${queueName}: `;
    return new BrokerError(ADAPTER, operation, `${where}${this.#explain(error)}`, { cause: error });
  }

  #explain(error: unknown): string {
    const e = (typeof error === 'object' && error !== null ? error : {}) as {
      name?: string; message?: string; code?: string; Code?: string; $fault?: string; errors?: { code?: string }[];
      $response?: { statusCode?: number; headers?: Record<string, string | undefined> };
    };
    const fix =
      this.config.url === undefined
        ? 'check the network and AWS_REGION'
        : 'start the endpoint or unset SQS_ENDPOINT for the embedded one';
    const networkCode = e.code ?? e.errors?.[0]?.code;
    if (networkCode !== undefined && NETWORK_CODES.has(networkCode)) {
      return `cannot reach ${this.config.endpoint} (${networkCode}); ${fix}`;
    }
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      return `cannot reach ${this.config.endpoint} (no answer within ${this.config.commandTimeoutMs} ms); ${fix}`;
    }
    if (e.name === 'CredentialsProviderError') {
      return `no AWS credentials (${e.message ?? ''}); set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`;
    }
    // An answer the SDK could not read as SQS (an HTML page, a bare 404): some other server is listening.
    if (e.$response !== undefined && (e.$fault === undefined || e.name === 'Unknown' || e.name === 'UnknownError')) {
      const type = e.$response.headers?.['content-type'];
      const fixNotSqs =
        this.config.url === undefined
          ? 'check AWS_REGION and any proxy in between'
          : 'check that SQS_ENDPOINT is an SQS endpoint (e.g. http://localhost:4566) or unset it for the embedded one';
      return `${this.config.endpoint} answered HTTP ${e.$response.statusCode ?? '?'}${type ? ` (${type})` : ''}, which is not an SQS reply; ${fixNotSqs}`;
    }
    if (e.$fault !== undefined) {
      const code = e.Code !== undefined && e.Code !== e.name ? `${e.Code} (${e.name})` : (e.name ?? 'UnknownError');
      const hint = AUTH_ERRORS.has(e.name ?? '')
        ? '; check the AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)'
        : '';
      return `${code}: ${firstLine(e.message ?? '')}${hint}`;
    }
    return `${e.name ?? 'Error'}: ${firstLine(e.message ?? String(error))}`;
  }
}

class SqsBroker implements Broker, RequestCounting {
  readonly capabilities: BrokerCapabilities;
  readonly #connection: SqsConnection;
  readonly #client: SQSClient;
  readonly #config: SqsConfig;
  /** Aborts this handle's long poll when it closes. */
  readonly #closing = new AbortController();
  /** FIFO message group ids this handle publishes to, round-robin. */
  readonly #groupIds: readonly string[];
  #nextGroup = 0;
  readonly #dedupPrefix = randomUUID();
  #dedupSeq = 0;
  #closed = false;

  constructor(connection: SqsConnection) {
    this.#connection = connection;
    this.#client = connection.client;
    this.#config = connection.config;
    this.capabilities = this.#config.mode === 'fifo' ? FIFO : STANDARD;
    const handle = connection.acquire();
    const groupId = this.#config.groupId ?? `handle-${handle}`;
    this.#groupIds =
      this.#config.groups === 1 ? [groupId] : Array.from({ length: this.#config.groups }, (_, i) => `${groupId}-${i}`);
  }

  requestCounts(): Readonly<Record<string, number>> {
    return { ...this.#connection.counts };
  }

  billedRequests(): number {
    return this.#connection.billed;
  }

  async describe(): Promise<BrokerInfo> {
    this.#assertOpen('describe');
    try {
      await this.#client.send(new ListQueuesCommand({ QueueNamePrefix: this.#config.namespace, MaxResults: 1 }));
    } catch (error) {
      throw this.#connection.wrap('describe', undefined, error);
    }
    return {
      name: ADAPTER,
      mode: this.#config.mode,
      serverVersion: this.#config.endpointVersion,
      endpoint: this.#config.endpoint,
      endpointKind: this.#config.endpointKind,
    };
  }

  async prepare(spec: QueueSpec): Promise<void> {
    this.#assertOpen('prepare');
    const { name, dlqName } = this.#connection.names(spec.name, 'prepare');
    const fifo = this.#config.mode === 'fifo';
    // Not clamped to SQS's 12 h: a queue silently made with another timeout than the run records would
    // mislead; SQS refuses it instead (InvalidAttributeValue), and the run ends with that one line.
    const visibilityS = Math.max(0, Math.ceil(spec.visibilityTimeoutMs / 1000));
    const attributes: Record<string, string> = { VisibilityTimeout: String(visibilityS) };
    if (fifo) attributes['FifoQueue'] = 'true';
    let dlqUrl: string | undefined;
    if (spec.maxReceives > 0) {
      if (dlqName.length > MAX_NAME_CHARS) {
        throw new BrokerError(
          ADAPTER,
          'prepare',
          `dead-letter queue name ${dlqName} is ${dlqName.length} characters; SQS allows ${MAX_NAME_CHARS}: use a shorter namespace or queue name`,
        );
      }
      dlqUrl = await this.#createQueue(dlqName, fifo ? { FifoQueue: 'true' } : {});
      let dlqArn: string | undefined;
      try {
        const out = await this.#client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
        dlqArn = out.Attributes?.['QueueArn'];
      } catch (error) {
        throw this.#connection.wrap('prepare', dlqName, error);
      }
      if (dlqArn === undefined) throw new BrokerError(ADAPTER, 'prepare', `queue ${dlqName}: no QueueArn in GetQueueAttributes`);
      attributes['RedrivePolicy'] = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: String(spec.maxReceives) });
    }
    const url = await this.#createQueue(name, attributes);
    this.#connection.queues.set(spec.name, Promise.resolve({ name, url, dlqName, dlqUrl }));
    this.#connection.specs.set(spec.name, { ...spec });
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    this.#assertOpen('publish');
    if (messages.length === 0) return;
    const { name, url } = await this.#connection.urls(queue, 'publish');
    const fifo = this.#config.mode === 'fifo';
    // Validate everything before sending anything.
    const chunks: SendMessageBatchRequestEntry[][] = [];
    let chunk: SendMessageBatchRequestEntry[] = [];
    let chunkBytes = 0;
    for (const message of messages) {
      const bytes = Buffer.byteLength(message.body, 'utf8');
      if (bytes > MAX_PAYLOAD_BYTES) {
        throw new BrokerError(ADAPTER, 'publish', `queue ${name}: message of ${bytes} bytes over SQS maximum of ${MAX_PAYLOAD_BYTES} bytes`);
      }
      const entry: SendMessageBatchRequestEntry = { Id: '', MessageBody: message.body };
      const delayMs = message.delayMs ?? 0;
      if (delayMs > 0) {
        if (fifo) {
          throw new BrokerError(ADAPTER, 'publish', `queue ${name}: per-message delay is not supported on FIFO queues`);
        }
        const delayS = Math.ceil(delayMs / 1000);
        if (delayS > MAX_DELAY_S) {
          throw new BrokerError(ADAPTER, 'publish', `queue ${name}: delay ${delayMs} ms is over SQS maximum of ${MAX_DELAY_S} s`);
        }
        entry.DelaySeconds = delayS;
      }
      if (fifo) {
        entry.MessageGroupId = this.#groupIds[this.#nextGroup++ % this.#groupIds.length];
        entry.MessageDeduplicationId = `${this.#dedupPrefix}-${this.#dedupSeq++}`;
      }
      if (chunk.length === MAX_BATCH_ENTRIES || chunkBytes + bytes > MAX_PAYLOAD_BYTES) {
        chunks.push(chunk);
        chunk = [];
        chunkBytes = 0;
      }
      entry.Id = String(chunk.length);
      chunk.push(entry);
      chunkBytes += bytes;
    }
    chunks.push(chunk);
    // A FIFO group keeps the order SQS received: its chunks go one after the other, and none after one that failed.
    try {
      await this.#batches('publish', name, 'messages', chunks, fifo, async (entries) => {
        const out = await this.#client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
        return out.Failed ?? [];
      });
    } catch (error) {
      await this.#recreateIfMissing(queue, error);
      throw error;
    }
  }

  async receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    this.#assertOpen('receive');
    const { name, url } = await this.#connection.urls(queue, 'receive');
    const waitS = options.waitMs <= 0 ? 0 : Math.min(MAX_WAIT_S, Math.ceil(options.waitMs / 1000));
    try {
      const out = await this.#client.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: clamp(Math.floor(options.maxMessages), 1, MAX_BATCH_ENTRIES),
          WaitTimeSeconds: waitS,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
        // A long poll legitimately lasts waitS; the request timeout is on top of it.
        { abortSignal: this.#closing.signal, requestTimeout: waitS * 1000 + this.#config.commandTimeoutMs },
      );
      const received = out.Messages ?? [];
      const messages: ReceivedMessage[] = new Array(received.length);
      for (let i = 0; i < received.length; i++) {
        const m = received[i]!;
        const count = Number(m.Attributes?.ApproximateReceiveCount);
        messages[i] = { body: m.Body ?? '', receiveCount: count >= 1 ? count : 1, receipt: m.ReceiptHandle ?? '' };
      }
      return messages;
    } catch (error) {
      // Closing the handle ends its long poll; what it may have taken becomes visible again later.
      if (this.#closed) return [];
      await this.#recreateIfMissing(queue, error);
      throw this.#connection.wrap('receive', name, error);
    }
  }

  /** Makes a queue this connection prepared again when `error` says it no longer exists. Never throws. */
  async #recreateIfMissing(queue: string, error: unknown): Promise<void> {
    const cause = error instanceof BrokerError ? error.cause : error;
    const spec = this.#connection.specs.get(queue);
    if (spec === undefined || !isQueueMissing(cause) || this.#closed) return;
    let running = this.#connection.recreating.get(queue);
    if (running === undefined) {
      running = this.prepare(spec)
        .catch(() => undefined)
        .finally(() => this.#connection.recreating.delete(queue));
      this.#connection.recreating.set(queue, running);
    }
    await running;
  }

  async ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    this.#assertOpen('ack');
    if (messages.length === 0) return;
    const { name, url } = await this.#connection.urls(queue, 'ack');
    const chunks = chunkEntries(messages, (m, id) => ({ Id: id, ReceiptHandle: m.receipt }));
    await this.#batches('ack', name, 'deletes', chunks, false, async (entries) => {
      const out = await this.#client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: entries }));
      return out.Failed ?? [];
    }, messages);
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    this.#assertOpen('nack');
    if (messages.length === 0) return;
    const { name, url } = await this.#connection.urls(queue, 'nack');
    const visibilityS = clamp(Math.ceil(retryDelayMs / 1000), 0, MAX_VISIBILITY_S);
    const chunks = chunkEntries(messages, (m, id) => ({ Id: id, ReceiptHandle: m.receipt, VisibilityTimeout: visibilityS }));
    await this.#batches('nack', name, 'visibility changes', chunks, false, async (entries) => {
      const out = await this.#client.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: entries }));
      return out.Failed ?? [];
    }, messages);
  }

  async depth(queue: string): Promise<QueueDepth> {
    this.#assertOpen('depth');
    const { name, url, dlqName, dlqUrl } = await this.#connection.urls(queue, 'depth');
    const [main, dead] = await Promise.all([
      this.#attributes('depth', name, url, [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ]),
      dlqUrl === undefined
        ? undefined
        : this.#attributes('depth', dlqName, dlqUrl, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']),
    ]);
    const count = (attributes: Record<string, string> | undefined, key: string): number => Number(attributes?.[key] ?? 0) || 0;
    return {
      ready: count(main, 'ApproximateNumberOfMessages'),
      inFlight: count(main, 'ApproximateNumberOfMessagesNotVisible'),
      delayed: count(main, 'ApproximateNumberOfMessagesDelayed'),
      dead: count(dead, 'ApproximateNumberOfMessages') + count(dead, 'ApproximateNumberOfMessagesNotVisible'),
    };
  }

  /** Purges the queue and its dead-letter queue. */
  async purge(queue: string): Promise<void> {
    this.#assertOpen('purge');
    const { name, url, dlqName, dlqUrl } = await this.#connection.urls(queue, 'purge');
    await Promise.all([this.#purgeOne(name, url), dlqUrl === undefined ? undefined : this.#purgeOne(dlqName, dlqUrl)]);
  }

  async teardown(queue: string): Promise<void> {
    this.#assertOpen('teardown');
    const { name, dlqName } = this.#connection.names(queue, 'teardown');
    const cached = await this.#connection.queues.get(queue)?.catch(() => undefined);
    this.#connection.queues.delete(queue);
    const remove = async (queueName: string, known: string | undefined): Promise<void> => {
      try {
        const url = known ?? (await this.#connection.queueUrl(queueName));
        if (url !== undefined) await this.#client.send(new DeleteQueueCommand({ QueueUrl: url }));
      } catch (error) {
        if (!isQueueMissing(error)) throw this.#connection.wrap('teardown', queueName, error);
      }
    };
    const removeDlq = dlqName.length <= MAX_NAME_CHARS ? remove(dlqName, cached?.dlqUrl) : undefined;
    await Promise.all([remove(name, cached?.url), removeDlq]);
  }

  async duplicate(): Promise<Broker> {
    this.#assertOpen('duplicate');
    return new SqsBroker(this.#connection);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    this.#connection.release();
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw new BrokerError(ADAPTER, operation, 'handle is closed');
  }

  /** CreateQueue; if it exists with other attributes, set them instead (prepare is idempotent). */
  async #createQueue(name: string, attributes: Record<string, string>): Promise<string> {
    try {
      const out = await this.#client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      if (out.QueueUrl === undefined) throw new BrokerError(ADAPTER, 'prepare', `queue ${name}: no QueueUrl in CreateQueue`);
      return out.QueueUrl;
    } catch (error) {
      if (!isAwsError(error, 'QueueNameExists')) throw this.#connection.wrap('prepare', name, error);
    }
    try {
      const url = await this.#connection.queueUrl(name);
      if (url === undefined) throw new BrokerError(ADAPTER, 'prepare', `queue ${name}: vanished while being prepared`);
      const { FifoQueue: _fifo, ...settable } = attributes;
      await this.#client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: settable }));
      return url;
    } catch (error) {
      throw this.#connection.wrap('prepare', name, error);
    }
  }

  async #attributes(
    operation: string,
    name: string,
    url: string,
    keys: ('ApproximateNumberOfMessages' | 'ApproximateNumberOfMessagesNotVisible' | 'ApproximateNumberOfMessagesDelayed')[],
  ): Promise<Record<string, string>> {
    try {
      const out = await this.#client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: keys }));
      return out.Attributes ?? {};
    } catch (error) {
      throw this.#connection.wrap(operation, name, error);
    }
  }

  async #purgeOne(name: string, url: string): Promise<void> {
    try {
      await this.#client.send(new PurgeQueueCommand({ QueueUrl: url }));
      return;
    } catch (error) {
      if (!isAwsError(error, 'PurgeQueueInProgress')) throw this.#connection.wrap('purge', name, error);
    }
    // SQS allows one PurgeQueue per queue per 60 s: drain what is visible instead, for a bounded time.
    const deadline = Date.now() + PURGE_DRAIN_MS;
    while (Date.now() < deadline) {
      let receipts: string[];
      try {
        const out = await this.#client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: MAX_BATCH_ENTRIES, WaitTimeSeconds: 0 }));
        receipts = (out.Messages ?? []).flatMap((m) => (m.ReceiptHandle === undefined ? [] : [m.ReceiptHandle]));
      } catch (error) {
        throw this.#connection.wrap('purge', name, error);
      }
      if (receipts.length === 0) return;
      const chunks = [receipts.map((receipt, i) => ({ Id: String(i), ReceiptHandle: receipt }))];
      await this.#batches('purge', name, 'deletes', chunks, false, async (entries) => {
        const out = await this.#client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: entries }));
        return out.Failed ?? [];
      });
    }
    throw new BrokerError(
      ADAPTER,
      'purge',
      `queue ${name}: a PurgeQueue is already in progress (SQS allows one per 60 s) and messages remain after draining for ${PURGE_DRAIN_MS / 1000} s; try again in a minute`,
    );
  }

  /**
   * Sends every chunk at once (or in order, if `sequential`); entries that fail inside a batch are retried
   * (those not the sender's fault: up to BATCH_ATTEMPTS with back-off). Rejects once all chunks settled,
   * with how many entries failed; a whole request that fails rejects with its own error. With `settles`
   * (the messages of an ack or nack, chunked as chunkEntries does), a failure after which some entries
   * did succeed rejects with a PartialSettleError listing those messages.
   */
  async #batches<E extends { Id: string | undefined }>(
    operation: string,
    name: string,
    what: string,
    chunks: readonly E[][],
    sequential: boolean,
    send: (entries: E[]) => Promise<BatchResultErrorEntry[]>,
    settles?: readonly ReceivedMessage[],
  ): Promise<void> {
    // Per chunk, the Ids of the entries that succeeded, filled as the answers come (also when a later retry fails whole).
    const done = chunks.map(() => new Set<string>());
    const results = sequential
      ? await settleInOrder(chunks, (chunk, i) => sendWithRetry(chunk, send, done[i]!), (failedEntries) => failedEntries.length > 0)
      : await Promise.allSettled(chunks.map((chunk, i) => sendWithRetry(chunk, send, done[i]!)));
    let failed = 0;
    let total = 0;
    let first: BatchResultErrorEntry | undefined;
    let rejected: BrokerError | undefined;
    for (let i = 0; i < results.length; i++) {
      const result = results[i]!;
      total += chunks[i]!.length;
      if (result.status === 'rejected') {
        rejected ??= this.#connection.wrap(operation, name, result.reason);
        continue;
      }
      failed += result.value.length;
      first ??= result.value[0];
    }
    if (rejected === undefined && first === undefined) return;
    let problem: string;
    if (rejected !== undefined) {
      if (settles === undefined) throw rejected;
      problem = rejected.message.slice(`${ADAPTER} ${operation}: `.length);
    } else {
      let unsent = 0;
      for (let i = results.length; i < chunks.length; i++) unsent += chunks[i]!.length;
      problem =
        `queue ${name}: ${failed} of ${total} ${what} failed (first: ${first!.Code ?? 'unknown'}: ${first!.Message ?? ''})` +
        (unsent > 0 ? `; the ${unsent} after them were not sent, to keep each group's order` : '');
    }
    const settled: ReceivedMessage[] = [];
    if (settles !== undefined) {
      for (let i = 0; i < chunks.length; i++) {
        for (const entry of chunks[i]!) if (done[i]!.has(entry.Id!)) settled.push(settles[i * MAX_BATCH_ENTRIES + Number(entry.Id)]!);
      }
    }
    if (settled.length === 0) throw rejected ?? new BrokerError(ADAPTER, operation, problem);
    throw new PartialSettleError(ADAPTER, operation, `${problem}; the other ${settled.length} succeeded`, settled, {
      cause: rejected?.cause,
    });
  }
}

/**
 * Runs `run` over the chunks one after the other, stopping at the first rejection or at the first
 * result `stopAfter` picks (a FIFO chunk with failed entries: sending the next one would put later
 * messages of a group ahead of the ones that failed).
 */
async function settleInOrder<E, R>(
  chunks: readonly E[],
  run: (chunk: E, index: number) => Promise<R>,
  stopAfter: (result: R) => boolean,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = [];
  for (const [index, chunk] of chunks.entries()) {
    try {
      const value = await run(chunk, index);
      results.push({ status: 'fulfilled', value });
      if (stopAfter(value)) break;
    } catch (reason) {
      results.push({ status: 'rejected', reason });
      break;
    }
  }
  return results;
}

/**
 * One batch call, retrying the entries that failed through no fault of the sender; returns those that
 * still fail. Adds the Id of every entry that succeeded to `done` as each answer comes.
 */
async function sendWithRetry<E extends { Id: string | undefined }>(
  entries: E[],
  send: (entries: E[]) => Promise<BatchResultErrorEntry[]>,
  done: Set<string>,
): Promise<BatchResultErrorEntry[]> {
  const permanent: BatchResultErrorEntry[] = [];
  let pending = entries;
  for (let attempt = 1; ; attempt++) {
    const failed = await send(pending);
    const failedIds = new Set(failed.map((entry) => entry.Id));
    for (const entry of pending) if (!failedIds.has(entry.Id)) done.add(entry.Id!);
    if (failed.length === 0) return permanent;
    const retry: BatchResultErrorEntry[] = [];
    for (const entry of failed) (entry.SenderFault ? permanent : retry).push(entry);
    if (retry.length === 0) return permanent;
    if (attempt >= BATCH_ATTEMPTS) return [...permanent, ...retry];
    const ids = new Set(retry.map((entry) => entry.Id));
    pending = pending.filter((entry) => ids.has(entry.Id));
    await sleep(BATCH_BACKOFF_MS * 2 ** (attempt - 1));
  }
}

function chunkEntries<E>(messages: readonly ReceivedMessage[], entry: (message: ReceivedMessage, id: string) => E): E[][] {
  const chunks: E[][] = [];
  for (let start = 0; start < messages.length; start += MAX_BATCH_ENTRIES) {
    const chunk: E[] = [];
    const end = Math.min(start + MAX_BATCH_ENTRIES, messages.length);
    for (let i = start; i < end; i++) chunk.push(entry(messages[i]!, String(i - start)));
    chunks.push(chunk);
  }
  return chunks;
}

/** Each started 64 KiB of payload is billed as one request (sent bodies for sends, received bodies for receives). */
function billedUnits(action: string, input: unknown, output: unknown): number {
  let bytes = 0;
  if (action === 'SendMessageBatch') {
    for (const entry of (input as { Entries?: { MessageBody?: string }[] }).Entries ?? []) {
      bytes += Buffer.byteLength(entry.MessageBody ?? '', 'utf8');
    }
  } else if (action === 'ReceiveMessage') {
    for (const message of (output as { Messages?: { Body?: string }[] } | undefined)?.Messages ?? []) {
      bytes += Buffer.byteLength(message.Body ?? '', 'utf8');
    }
  }
  return Math.max(1, Math.ceil(bytes / BILLING_CHUNK_BYTES));
}

function parseMode(mode: string, operation: string): Mode {
  const lower = mode.toLowerCase();
  if (lower === 'standard' || lower === 'fifo') return lower;
  throw new BrokerError(ADAPTER, operation, `unknown mode "${mode}": use standard or fifo`);
}

/**
 * True if an SDK error is the AWS error `code`. The SDK names some errors by their modelled name
 * (`QueueDoesNotExist`) and others by the legacy query code (`AWS.SimpleQueueService.QueueNameExists`).
 */
function isAwsError(error: unknown, code: string, legacyCode = code): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, Code } = error as { name?: string; Code?: string };
  const legacy = `AWS.SimpleQueueService.${legacyCode}`;
  return name === code || name === legacy || Code === legacy || Code === code;
}

/** True when an endpoint URL that is not an emulator should be called with the user's own credentials. */
function usesOwnCredentials(config: SqsConfig): boolean {
  if (config.endpointKind === 'embedded' || config.endpointKind === 'localstack') return false;
  return Boolean(process.env['AWS_ACCESS_KEY_ID'] || process.env['AWS_PROFILE']);
}

function isQueueMissing(error: unknown): boolean {
  return isAwsError(error, 'QueueDoesNotExist', 'NonExistentQueue');
}

function stringSetting(settings: NonNullable<BrokerOptions['settings']>, key: string): string | undefined {
  const value = settings[key];
  return value === undefined || value === '' ? undefined : String(value);
}

function numberSetting(settings: NonNullable<BrokerOptions['settings']>, key: string): number | undefined {
  const value = settings[key];
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) {
    throw new BrokerError(ADAPTER, 'open', `settings.${key} must be a number, not "${String(value)}"`);
  }
  return parsed;
}

/** Error lines end at the first newline: the SDK appends advice for developers on a second one. */
function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
