// The help is made from the registry and the scenario list: every flag in a known group, the groups
// agreeing with what a workload file may hold, every broker, mode and variable listed, lines fitted.

import { describe, expect, it } from 'vitest';
import { adapters } from '../../adapters/index.ts';
import { scenarios } from '../../scenarios/index.ts';
import {
  BROKER_GROUP,
  brokerRows,
  environmentRows,
  helpWidth,
  OUTPUT_GROUP,
  scenarioEpilogue,
  scenarioFlags,
  section,
  WORKLOAD_GROUP,
} from '../../src/cli-help.ts';
import { WORKLOAD_KEYS } from '../../src/workload.ts';

const flags = scenarioFlags();
const scenarioNames = scenarios.map((s) => s.name);

describe('scenario flags', () => {
  it('puts every flag in the workload, broker or output group, or under a scenario of the registry', () => {
    for (const [name, flag] of Object.entries(flags)) {
      expect([WORKLOAD_GROUP, BROKER_GROUP, OUTPUT_GROUP, ...scenarioNames], name).toContain(flag.group);
    }
    expect(new Set(Object.values(flags).map((f) => f.group)).size).toBeGreaterThan(5);
  });

  it('groups as workload files do: what a file may hold is workload or a scenario\'s own, the broker and output stay on the command line', () => {
    for (const [name, flag] of Object.entries(flags)) {
      if (name === 'workload') continue; // the file itself
      const inFile = WORKLOAD_KEYS.includes(name);
      expect(inFile, `${name} in ${flag.group}`).toBe(flag.group !== BROKER_GROUP && flag.group !== OUTPUT_GROUP);
    }
  });

  it('names a type for every flag and a default for every flag that has one', () => {
    for (const [name, flag] of Object.entries(flags)) {
      expect(flag.type, name).toMatch(/^(count|number|fraction|ms|s|bytes|size|list|choice|name|file|folder|switch)$/);
      if (flag.type === 'choice' && name !== 'mode') expect(flag.choices?.length, name).toBeGreaterThan(1);
      if (name !== 'workload') expect(flag.default, name).toBeDefined();
    }
  });

  it('lists, beside a global default, exactly the scenarios whose own default differs', () => {
    const differing = scenarios.filter((s) => s.defaults?.task?.durationMs !== undefined && s.defaults.task.durationMs !== 0);
    expect(differing.length).toBeGreaterThan(1);
    expect(flags['task-ms']!.default).toBe(['0 = no task', ...differing.map((s) => `${s.name}: ${s.defaults!.task!.durationMs}`)].join('; '));
    // Scenarios that repeat the global value are not listed.
    expect(flags['task-dist']!.default).toBe('fixed');
  });

  it('says which brokers hold a batch below the default, from their declared limits', () => {
    const limited = adapters.filter((a) => a.modes.some((m) => a.capabilities(m).maxBatchSize < 100));
    expect(limited.length).toBeGreaterThan(0);
    for (const a of limited) expect(flags['batch']!.default).toContain(`${a.name}: `);
  });
});

describe('brokers and environment', () => {
  it('lists every adapter with all its aliases and every mode, the default marked, also for a broker of one mode', () => {
    const rows = new Map(brokerRows());
    expect([...rows.keys()]).toEqual(adapters.map((a) => a.name));
    for (const a of adapters) {
      const text = rows.get(a.name)!;
      for (const alias of a.aliases) expect(text).toContain(alias);
      for (const mode of a.modes) expect(text).toMatch(new RegExp(`\\b${mode}${mode === a.defaultMode ? ' \\(default\\)' : '(,|$)'}`));
    }
  });

  it('lists QUEUE, CHANNEL_NAME and every server and secret variable the registry declares, each once', () => {
    const names = environmentRows().map(([name]) => name);
    const declared = adapters.flatMap((a) => [...(a.serverVariable ? [a.serverVariable] : []), ...(a.secretVariables ?? []).map((s) => s.name)]);
    expect(declared.length).toBeGreaterThan(5);
    for (const name of ['QUEUE', 'CHANNEL_NAME', ...declared]) expect(names.filter((n) => n === name), name).toHaveLength(1);
  });
});

describe('layout', () => {
  it('fits every line of the text after the flags in the width, commands excepted, which stay whole', () => {
    for (const width of [60, 80, 120]) {
      const lines = scenarioEpilogue(width).split('\n');
      for (const line of lines) if (!/^ {2}(QUEUE=|npm |npx )/.test(line)) expect([...line].length, line).toBeLessThanOrEqual(width);
    }
  });

  it('wraps a section\'s text under itself', () => {
    expect(section('T:', [['key', 'one two three four five six']], 20).split('\n')).toEqual(['T:', '  key  one two three', '       four five six']);
  });

  it('takes the terminal\'s width, else COLUMNS, else 80, and never more than 120', () => {
    expect(helpWidth({ columns: 100 }, {})).toBe(100);
    expect(helpWidth({}, { COLUMNS: '90' })).toBe(90);
    expect(helpWidth({}, {})).toBe(80);
    expect(helpWidth({ columns: 300 }, {})).toBe(120);
  });
});
