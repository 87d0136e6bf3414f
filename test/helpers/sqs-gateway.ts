// An SQS endpoint of a second kind for fault tests: a loopback HTTP gateway in front of a real SQS
// endpoint (the embedded fauxqs) that forwards every request unchanged, except that it can refuse
// chosen entries of a DeleteMessageBatch. A refused entry is never sent on: the emulator keeps that
// message in flight (it comes back after its visibility timeout), and the gateway adds it to the
// answer's `Failed` list as AWS reports a bad receipt handle. So the answer the client gets is true
// to the broker's state: the other entries were deleted, the refused ones were not.
//
// LIMITATION: speaks the SDK's JSON protocol only (AmazonSQS.* targets), which is all the adapter uses.
// fauxqs itself never fails a delete entry (it accepts any receipt handle), hence the gateway.

import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen } from './faults.ts';

export interface SqsGateway {
  /** `http://127.0.0.1:port`: use it as the SQS endpoint URL. */
  readonly url: string;
  /** The receipt handles refused so far. */
  readonly refused: () => readonly string[];
  close(): Promise<void>;
}

interface DeleteEntry {
  Id: string;
  ReceiptHandle: string;
}

/**
 * Starts a gateway to `target` (an http:// SQS endpoint URL). `refuse` sees each DeleteMessageBatch's
 * entries and returns the receipt handles to refuse (none: the request goes through untouched).
 */
export async function startSqsGateway(target: string, refuse: (entries: readonly DeleteEntry[]) => readonly string[]): Promise<SqsGateway> {
  const upstream = new URL(target);
  const refused: string[] = [];
  const forward = (incoming: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...incoming.headers, host: upstream.host, 'content-length': String(body.length) };
      const out = request(
        { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers },
        (reply) => {
          const chunks: Buffer[] = [];
          reply.on('data', (chunk: Buffer) => chunks.push(chunk));
          reply.on('end', () => {
            const replyHeaders: Record<string, string> = {};
            for (const [name, value] of Object.entries(reply.headers)) {
              if (value !== undefined && name !== 'content-length' && name !== 'transfer-encoding') replyHeaders[name] = String(value);
            }
            resolve({ status: reply.statusCode ?? 502, headers: replyHeaders, body: Buffer.concat(chunks) });
          });
          reply.on('error', reject);
        },
      );
      out.on('error', reject);
      out.end(body);
    });

  const handle = async (incoming: IncomingMessage, response: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    const failed: { Id: string; SenderFault: boolean; Code: string; Message: string }[] = [];
    if (incoming.headers['x-amz-target'] === 'AmazonSQS.DeleteMessageBatch') {
      const input = JSON.parse(body.toString('utf8')) as { Entries: DeleteEntry[] };
      const refuseNow = new Set(refuse(input.Entries));
      if (refuseNow.size > 0) {
        const kept = input.Entries.filter((entry) => !refuseNow.has(entry.ReceiptHandle));
        for (const entry of input.Entries) {
          if (!refuseNow.has(entry.ReceiptHandle)) continue;
          refused.push(entry.ReceiptHandle);
          failed.push({ Id: entry.Id, SenderFault: true, Code: 'ReceiptHandleIsInvalid', Message: 'The input receipt handle is invalid.' });
        }
        body = Buffer.from(JSON.stringify({ ...input, Entries: kept }), 'utf8');
        if (kept.length === 0) {
          // Nothing left to send on: answer for the emulator.
          reply(response, 200, { 'content-type': 'application/x-amz-json-1.0' }, Buffer.from(JSON.stringify({ Successful: [], Failed: failed })));
          return;
        }
      }
    }
    const answer = await forward(incoming, body);
    if (failed.length > 0 && answer.status === 200) {
      const output = JSON.parse(answer.body.toString('utf8')) as { Successful?: unknown[]; Failed?: unknown[] };
      answer.body = Buffer.from(JSON.stringify({ ...output, Failed: [...(output.Failed ?? []), ...failed] }), 'utf8');
    }
    reply(response, answer.status, answer.headers, answer.body);
  };

  const server = createServer((incoming, response) => {
    handle(incoming, response).catch(() => {
      response.destroy();
    });
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    refused: () => [...refused],
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function reply(response: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void {
  response.writeHead(status, { ...headers, 'content-length': String(body.length) });
  response.end(body);
}
