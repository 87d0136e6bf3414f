// One SQSClient (and, once a queue has consumer groups, one SNSClient) and their sockets, shared by a
// handle, its duplicates and its groups: the configuration read from the options, every request of
// either service counted by kind (and as AWS bills it), the SQS names and URLs of logical queues, the
// topics of queues with groups, and the one line any failure is told in. The limits are in sqs-limits.ts.
//
// Credentials: AWS (no endpoint URL) uses the SDK's default chain. An endpoint of kind `embedded` or
// `localstack` gets the fixed pair test/test, so real keys are never sent to an emulator. Any other
// endpoint URL (an https:// SQS-compatible service, an external emulator) uses the default chain when
// AWS_ACCESS_KEY_ID or AWS_PROFILE is set, else test/test. Keys never appear in messages or results.
//
// LIMITATION: counts are kept per open() (its handles and their duplicates); handles opened apart count apart.

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { SNSClient } from '@aws-sdk/client-sns';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { BrokerError, type BrokerOptions, type QueueSpec } from '../src/broker.ts';
import { SQS_PRICING } from '../src/prices.ts';
import { redactUrl } from '../src/redact.ts';
import { firstLine, SettingsReader, type EndpointKind } from './kit/index.ts';
import { endpointLimits, MAX_BATCH_ENTRIES, MAX_IN_FLIGHT, MAX_NAME_CHARS } from './sqs-limits.ts';

export { MAX_BATCH_ENTRIES, MAX_NAME_CHARS };
export const ADAPTER = 'sqs';
/** SQS bills each started 64 KiB of a request's payload as one request, and SNS its publishes alike (src/prices.ts). */
const BILLING_CHUNK_BYTES = SQS_PRICING.billedChunkBytes;
/** Actions whose sent bodies are billed by the chunk, and the field that holds their entries. */
const BILLED_SENDS: Readonly<Record<string, string>> = { SendMessageBatch: 'Entries', PublishBatch: 'PublishBatchRequestEntries' };
const DEFAULT_MAX_SOCKETS = 64;
/** AWS error names that mean the credentials were refused, not the request. */
const AUTH_ERRORS = new Set([
  'InvalidClientTokenId', 'UnrecognizedClientException', 'SignatureDoesNotMatch', 'IncompleteSignature', 'InvalidAccessKeyId',
  'MissingAuthenticationToken', 'ExpiredToken', 'ExpiredTokenException', 'AccessDenied', 'AccessDeniedException',
]);
/** Where the request counter sits: in the deserialize step, below the retry middleware, so once per attempt sent. */
const COUNTER = { step: 'deserialize', name: 'brokerbenchRequestCounter' } as const;
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED',
]);


export type SqsMode = 'standard' | 'fifo' | 'fifo-high-throughput';

/** True for the modes whose queues are FIFO queues. */
export function isFifoMode(mode: string): boolean {
  return mode === 'fifo' || mode === 'fifo-high-throughput';
}

export interface SqsConfig {
  readonly namespace: string;
  readonly mode: SqsMode;
  /** FIFO queues (`fifo` and `fifo-high-throughput`). */
  readonly fifo: boolean;
  readonly url: string | undefined;
  readonly region: string;
  /** The endpoint as shown: the URL, or the AWS regional one, without secrets. */
  readonly endpoint: string;
  readonly endpointKind: EndpointKind;
  readonly endpointVersion: string;
  /** Largest SQS message the endpoint takes, and largest sum of one batch (sqs-limits.ts). */
  readonly maxPayloadBytes: number;
  readonly commandTimeoutMs: number;
  readonly maxSockets: number;
  readonly maxAttempts: number | undefined;
  readonly groupId: string | undefined;
  readonly groups: number;
}

/** The configuration of one open(), from its options and settings (sqs.ts lists them). */
export function readSqsConfig(options: BrokerOptions, mode: SqsMode): SqsConfig {
  const settings = new SettingsReader(ADAPTER, options.settings);
  const region = settings.string('region') ?? (options.url !== undefined ? 'us-east-1' : process.env['AWS_REGION']);
  if (region === undefined || region === '') {
    throw new BrokerError(ADAPTER, 'open', 'no AWS region: set AWS_REGION (or settings.region)');
  }
  const endpointKind = sqsEndpointKind(options);
  return {
    namespace: options.namespace,
    mode,
    fifo: isFifoMode(mode),
    url: options.url,
    region,
    endpoint: redactUrl(options.url ?? `https://sqs.${region}.amazonaws.com`),
    endpointKind,
    maxPayloadBytes: endpointLimits(endpointKind).maxPayloadBytes,
    endpointVersion: settings.string('endpointVersion') ?? (options.url === undefined ? 'aws' : 'unknown'),
    commandTimeoutMs: options.commandTimeoutMs,
    maxSockets: settings.number('maxSockets', { min: 1, integer: true }) ?? DEFAULT_MAX_SOCKETS,
    maxAttempts: settings.number('maxAttempts', { min: 1, integer: true }),
    groupId: settings.string('groupId'),
    groups: settings.number('groups', { min: 1, integer: true }) ?? 1,
  };
}

/** What kind of endpoint `options` reach: the `endpointKind` setting, else `aws` without a URL and `other` with one. */
export function sqsEndpointKind(options: Pick<BrokerOptions, 'url' | 'settings'>): EndpointKind {
  return new SettingsReader(ADAPTER, options.settings).endpointKind(options.url === undefined ? 'aws' : 'other');
}

/** The queue URLs behind one logical queue name. */
export interface QueueUrls {
  readonly name: string;
  readonly url: string;
  readonly dlqName: string;
  /** `undefined` when the queue has no dead-letter queue. */
  readonly dlqUrl: string | undefined;
}

/** A queue's SNS topic, made once the queue has a consumer group (sqs-topics.ts). */
export interface Topic {
  readonly name: string;
  readonly arn: string;
  /** The groups subscribed to it: group name -> its queue's logical name and its subscription ARN. */
  readonly groups: Map<string, { readonly queue: string; readonly subscriptionArn: string }>;
}

/** One SQSClient (and SNSClient) and their sockets, shared by a handle, its duplicates and its groups; destroyed with the last one. */
export class SqsConnection {
  readonly config: SqsConfig;
  readonly client: SQSClient;
  /** Prepared or looked-up queues by logical name; a promise so concurrent look-ups share one request. */
  readonly queues = new Map<string, Promise<QueueUrls>>();
  /** How each queue was prepared, to make it again if it vanishes; logical name -> spec. */
  readonly specs = new Map<string, QueueSpec>();
  /** Re-creations in progress, so concurrent failures share one. */
  readonly recreating = new Map<string, Promise<void>>();
  /** Topics of the queues that have consumer groups, by the queue's logical name: their publishes go through SNS. */
  readonly topics = new Map<string, Promise<Topic>>();
  readonly counts: Record<string, number> = {};
  billed = 0;
  #handles = 0;
  #nextHandle = 0;
  readonly #agents: { http: HttpAgent; https: HttpsAgent };
  #sns: SNSClient | undefined;

  constructor(config: SqsConfig) {
    this.config = config;
    this.#agents = {
      http: new HttpAgent({ keepAlive: true, maxSockets: config.maxSockets }),
      https: new HttpsAgent({ keepAlive: true, maxSockets: config.maxSockets }),
    };
    // Node 20 is what the project pins; the SDK's one-time notice about Node 22 is noise in every run.
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    this.client = new SQSClient(this.#clientConfig());
    // In the deserialize step, below the retry middleware: runs once per attempt actually sent.
    this.client.middlewareStack.add((next, context) => (args) => this.#counted(context.commandName, args.input, () => next(args)), COUNTER);
  }

  /**
   * The SNS client, made on first use (only fan-out needs it): the same endpoint, credentials, sockets
   * and request counts as the SQS client. An emulator serves both on one URL, as fauxqs and LocalStack do.
   */
  get sns(): SNSClient {
    if (this.#sns === undefined) {
      this.#sns = new SNSClient(this.#clientConfig());
      this.#sns.middlewareStack.add((next, context) => (args) => this.#counted(context.commandName, args.input, () => next(args)), COUNTER);
    }
    return this.#sns;
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
    this.#sns?.destroy();
    // Agents passed in are not the SDK's to destroy.
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  /** What both clients are made with: region, endpoint and credentials, attempts, this connection's sockets and timeouts. */
  #clientConfig() {
    const { config } = this;
    return {
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
    };
  }

  /** Counts one attempt of `commandName` by action, and as billed once it is answered. */
  async #counted<R extends { output?: unknown }>(commandName: string | undefined, input: unknown, send: () => Promise<R>): Promise<R> {
    const action = (commandName ?? 'Unknown').replace(/Command$/, '');
    this.counts[action] = (this.counts[action] ?? 0) + 1;
    let units = 1;
    try {
      const result = await send();
      units = billedUnits(action, input, result.output);
      return result;
    } finally {
      this.billed += units;
    }
  }

  /** SQS names for a logical queue: `${namespace}-${queue}`, characters outside [A-Za-z0-9_-] turned into `-`. */
  sqsNames(queue: string): { name: string; dlqName: string } {
    const base = `${this.config.namespace}-${queue}`.replace(/[^A-Za-z0-9_-]/g, '-');
    const suffix = this.config.fifo ? '.fifo' : '';
    return { name: `${base}${suffix}`, dlqName: `${base}-dlq${suffix}` };
  }

  /** `sqsNames`, refused for `operation` when the queue's name is longer than SQS allows. */
  names(queue: string, operation: string): { name: string; dlqName: string } {
    const names = this.sqsNames(queue);
    const { name } = names;
    if (name.length > MAX_NAME_CHARS) {
      throw new BrokerError(
        ADAPTER,
        operation,
        `queue name ${name} is ${name.length} characters; SQS allows ${MAX_NAME_CHARS}: use a shorter namespace or queue name`,
      );
    }
    return names;
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

  /** Any failure as a BrokerError naming the operation, the queue (or topic) and the AWS error code. */
  wrap(operation: string, name: string | undefined, error: unknown, what: 'queue' | 'topic' = 'queue'): BrokerError {
    if (error instanceof BrokerError) return error;
    const where = name === undefined ? '' : `${what} ${name}: `;
    return new BrokerError(ADAPTER, operation, `${where}${this.explain(error, what === 'topic' ? 'SNS' : 'SQS')}`, { cause: error });
  }

  /**
   * One line for any failure: an unreachable endpoint, refused credentials, a server that is not SQS (or,
   * for a topic's requests, not SNS), an AWS error code.
   */
  explain(error: unknown, service: 'SQS' | 'SNS' = 'SQS'): string {
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
    // An answer the SDK could not read (an HTML page, a bare 404): some other server is listening. An
    // HTML page counts even where the SDK took its status for a modelled error (SNS: 404 is NotFound).
    const type = e.$response?.headers?.['content-type'];
    const notAnAnswer = e.$fault === undefined || e.name === 'Unknown' || e.name === 'UnknownError' || /html/i.test(type ?? '');
    if (e.$response !== undefined && notAnAnswer) {
      const fixNotSqs =
        this.config.url === undefined
          ? 'check AWS_REGION and any proxy in between'
          : service === 'SNS'
            ? 'consumer groups on SQS publish through an SNS topic, so SNS must answer at the same endpoint (LocalStack: SERVICES=sqs,sns; the embedded fauxqs serves both)'
            : 'check that SQS_ENDPOINT is an SQS endpoint (e.g. http://localhost:4566) or unset it for the embedded one';
      return `${this.config.endpoint} answered HTTP ${e.$response.statusCode ?? '?'}${type ? ` (${type})` : ''}, which is not an ${service} reply; ${fixNotSqs}`;
    }
    if (e.$fault !== undefined) {
      const code = e.Code !== undefined && e.Code !== e.name ? `${e.Code} (${e.name})` : (e.name ?? 'UnknownError');
      const hint = AUTH_ERRORS.has(e.name ?? '')
        ? '; check the AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)'
        : isAwsError(error, 'OverLimit')
          ? `; SQS allows ${MAX_IN_FLIGHT.toLocaleString('en-US')} messages in flight per queue (standard and FIFO): fewer consumers or smaller receives`
          : '';
      return `${code}: ${firstLine(e.message ?? '')}${hint}`;
    }
    return `${e.name ?? 'Error'}: ${firstLine(e.message ?? String(error))}`;
  }
}

/**
 * Each started 64 KiB of payload is billed as one request: sent bodies for SendMessageBatch and SNS
 * PublishBatch (and Publish), received bodies for ReceiveMessage.
 */
function billedUnits(action: string, input: unknown, output: unknown): number {
  let bytes = 0;
  const entriesField = BILLED_SENDS[action];
  if (entriesField !== undefined) {
    for (const entry of ((input as Record<string, unknown>)[entriesField] as { MessageBody?: string; Message?: string }[] | undefined) ?? []) {
      bytes += Buffer.byteLength(entry.MessageBody ?? entry.Message ?? '', 'utf8');
    }
  } else if (action === 'Publish') {
    bytes = Buffer.byteLength((input as { Message?: string }).Message ?? '', 'utf8');
  } else if (action === 'ReceiveMessage') {
    for (const message of (output as { Messages?: { Body?: string }[] } | undefined)?.Messages ?? []) {
      bytes += Buffer.byteLength(message.Body ?? '', 'utf8');
    }
  }
  return Math.max(1, Math.ceil(bytes / BILLING_CHUNK_BYTES));
}

/**
 * True if an SDK error is the AWS error `code`. The SDK names some errors by their modelled name
 * (`QueueDoesNotExist`) and others by the legacy query code (`AWS.SimpleQueueService.QueueNameExists`).
 */
export function isAwsError(error: unknown, code: string, legacyCode = code): boolean {
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

export function isQueueMissing(error: unknown): boolean {
  return isAwsError(error, 'QueueDoesNotExist', 'NonExistentQueue');
}
