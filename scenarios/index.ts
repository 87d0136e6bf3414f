// The scenario registry: `--scenario NAME` looks names up here.

import type { Scenario } from './scenario.ts';
import { throughput } from './throughput.ts';

export const scenarios: readonly Scenario[] = [throughput];

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((scenario) => scenario.name === name);
}

export type { Scenario, ScenarioContext, ScenarioOutcome } from './scenario.ts';
