// The scenario registry: `--scenario NAME` looks names up here.
//
// LIMITATION: a fixed list: a new scenario file does nothing until it is added below.

import { throughput } from './throughput.ts';
import { executor } from './executor.ts';
import { fixedRate } from './fixed-rate.ts';
import { retryDlq } from './retry-dlq.ts';
import { delayed } from './delayed.ts';
import { slowTasks } from './slow-tasks.ts';
import { crashRecovery } from './crash-recovery.ts';
import { backlog } from './backlog.ts';
import { scaleOut } from './scale-out.ts';
import { fanOut } from './fan-out.ts';
import type { Scenario } from '../src/scenario.ts';

export const scenarios: readonly Scenario[] = [throughput, executor, fixedRate, retryDlq, delayed, slowTasks, crashRecovery, backlog, scaleOut, fanOut];

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((scenario) => scenario.name === name);
}

export type { Scenario, ScenarioContext } from '../src/scenario.ts';
export type { ScenarioOutcome } from '../src/outcome.ts';
