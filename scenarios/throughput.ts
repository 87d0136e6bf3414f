// throughput: N messages published as fast as possible while consumers take them, the seed's
// publisher/subscriber (RPUSH/LPOP against SendMessage/ReceiveMessage) with acks and a ledger.
//
// LIMITATION: publishers and consumers share one Node process (and its event loop) with each other;
// on a small machine the broker, the harness and the server compete for the same cores, so the
// figures are for this host, not for a broker given its own machine. No task runs unless --task-ms
// is set, so this is the queue's cost alone, not a worker pool's.

import { runPipeline } from '../src/runner/pipeline.ts';
import { ledgerVerdicts } from './verdicts.ts';
import type { Scenario } from '../src/scenario.ts';
import type { ScenarioOutcome } from '../src/outcome.ts';

export const throughput: Scenario = {
  name: 'throughput',
  measures: 'publish, receive and completion rate for N messages, with end-to-end latency and a loss ledger',
  limitations: 'publishers, consumers and the broker share this host; no task runs unless --task-ms is set',
  requires: [],
  async run(context): Promise<ScenarioOutcome> {
    const outcome = await runPipeline(context);
    return { ...outcome, verdicts: ledgerVerdicts(outcome) };
  },
};
