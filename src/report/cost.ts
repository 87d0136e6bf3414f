// What a month at a sustained rate would cost on each broker of a comparison: a broker billed per
// request (SQS) at the billed requests per message its runs measured, each at its service's price
// (src/prices.ts); a self-hosted one as whole instances, each taken to complete what one completed in
// these runs, at the price a month given for one; and, between the two kinds, the rate at which one
// instance costs what the requests would. Rendered for the terminal, Markdown, JSON and HTML; every
// renderer returns a string.
//
// LIMITATION: a model, not a quote. Left out: the request free tier (1 million a month), volume tiers,
// data transfer, storage and KMS, and everything an instance needs besides itself (disks, backups, a
// second instance for failover: price a pair by giving twice the instance price). An instance's
// capacity is the completion rate measured here, with the harness and the broker on the same machine,
// for this workload (payload, batches, consumers); a run held to a fixed rate measured the rate it was
// given, not what the machine could take. Request counts of an emulator are priced as if AWS had
// answered them.

import { formatCount, formatRate } from '../format.ts';
import { num, str } from '../flags.ts';
import { UsageError } from '../errors.ts';
import { HOURS_PER_MONTH, SECONDS_PER_MONTH } from '../prices.ts';
import { fitTable, wrap, wrapLines } from './table.ts';
import { requestCost, type Column, type Group, type RequestCost } from './group.ts';
import { requestPricedAdapters, usdPerMillionRequests } from './pricing.ts';
import type { ResultFile } from './result-file.ts';

export interface CostOptions {
  /** Messages per second, sustained for the whole month. */
  readonly ratePerSec: number;
  /** USD a month for one instance of a self-hosted broker; absent: instances are counted, not priced. */
  readonly instanceUsdMonth?: number;
}

/** One column of a comparison (or one run) as the model takes it. */
export interface CostSubject {
  readonly label: string;
  /** Whether its broker is billed per request (its registry entry has a price). */
  readonly pricedPerRequest: boolean;
  /** Completion rate its runs measured (median of the runs), messages per second. */
  readonly completionPerSec: number;
  /** Its requests, priced by service; absent where its runs recorded none. */
  readonly requests?: RequestCost;
  /** The machine its runs ran on, as the result files record it. */
  readonly machine: string;
}

/** One service's part of a request-priced broker's month. */
export interface ServiceBill {
  readonly service: string;
  readonly tier: string;
  readonly usdPerMillionRequests: number;
  readonly billedPerMessage: number;
  readonly requestsPerMonth: number;
  readonly usdPerMonth: number;
}

export type ColumnCost =
  | {
      readonly kind: 'requests';
      readonly label: string;
      /** Billed requests per completed message, all services. */
      readonly billedPerMessage: number;
      readonly services: readonly ServiceBill[];
      readonly usdPerMonth: number;
    }
  | {
      readonly kind: 'instances';
      readonly label: string;
      /** What one instance completed in these runs, messages per second. */
      readonly onePerSec: number;
      /** max(1, ceil(rate / onePerSec)). */
      readonly instances: number;
      readonly machine: string;
      /** Absent without an instance price. */
      readonly usdPerMonth?: number;
    }
  | { readonly kind: 'none'; readonly label: string; readonly reason: string };

/** Where one self-hosted broker's instance costs what a request-priced broker's requests would. */
export interface BreakEven {
  readonly selfHosted: string;
  readonly requestPriced: string;
  /** Messages per second at which one instance's month equals the requests' month. */
  readonly ratePerSec: number;
  /** What one instance completed here: past it, one instance is not enough. */
  readonly onePerSec: number;
}

export interface GroupCost {
  /** The comparison group's title (its workload); absent for a single run. */
  readonly title?: string;
  readonly columns: readonly ColumnCost[];
  readonly breakEven: readonly BreakEven[];
  /** Plain sentences: what could not be worked out and why, and what the figures rest on. */
  readonly notes: readonly string[];
}

/**
 * `--cost-rate` and `--instance-usd-month` as given (strings, or undefined when absent), checked: a rate
 * that is not a positive number, a price that is not one, or a price without a rate is one line (exit 2).
 */
export function costOptionsFrom(rate: unknown, instanceUsdMonth: unknown): CostOptions | undefined {
  if (rate === undefined) {
    if (instanceUsdMonth !== undefined) {
      throw new UsageError('--instance-usd-month prices the instances a sustained rate needs: give that rate too, e.g. --cost-rate 200 (messages per second)');
    }
    return undefined;
  }
  const ratePerSec = num('--cost-rate', rate, 0);
  if (!(ratePerSec > 0)) throw new UsageError(`--cost-rate must be a positive number of messages per second, got "${str(rate) ?? String(rate)}"`);
  if (instanceUsdMonth === undefined) return { ratePerSec };
  const usd = num('--instance-usd-month', instanceUsdMonth, 0);
  if (!(usd > 0)) throw new UsageError(`--instance-usd-month must be a positive number of US dollars, got "${str(instanceUsdMonth) ?? String(instanceUsdMonth)}"`);
  return { ratePerSec, instanceUsdMonth: usd };
}

/** Messages a month at `ratePerSec`, over the month of src/prices.ts. */
export function messagesPerMonth(ratePerSec: number): number {
  return ratePerSec * SECONDS_PER_MONTH;
}

/** The machine of a result, for "on a machine like this one". */
function machineOf(result: Pick<ResultFile, 'environment'>): string {
  const env = result.environment as ResultFile['environment'] | undefined;
  if (!env) return 'a machine the result does not record';
  return `${env.cpuCount}× ${env.cpuModel}, ${(env.totalMemoryBytes / 1024 ** 3).toFixed(1)} GiB`;
}

export function subjectOfColumn(column: Column): CostSubject {
  const first = column.runs[0]!.result;
  return {
    label: column.label,
    pricedPerRequest: usdPerMillionRequests(first) !== undefined,
    completionPerSec: column.completePerSec.median,
    ...(column.requests ? { requests: column.requests } : {}),
    machine: machineOf(first),
  };
}

export function subjectOfRun(result: ResultFile): CostSubject {
  const { requests } = requestCost([result], result.ledger.completed);
  return {
    label: `${result.broker.name} ${result.broker.mode}`,
    pricedPerRequest: usdPerMillionRequests(result) !== undefined,
    completionPerSec: result.throughput.completePerSec,
    ...(requests ? { requests } : {}),
    machine: machineOf(result),
  };
}

/** One subject's month at `options.ratePerSec`. */
export function costOfSubject(subject: CostSubject, options: CostOptions): ColumnCost {
  const { label } = subject;
  const messages = messagesPerMonth(options.ratePerSec);
  if (subject.pricedPerRequest) {
    const services = subject.requests?.byService;
    if (!services || services.length === 0) return { kind: 'none', label, reason: 'its runs recorded no request counts, so its requests cannot be priced' };
    const bills = services.map((s): ServiceBill => {
      const requestsPerMonth = messages * s.billedPerMessage;
      return {
        service: s.service,
        tier: s.tier,
        usdPerMillionRequests: s.usdPerMillionRequests,
        billedPerMessage: s.billedPerMessage,
        requestsPerMonth,
        usdPerMonth: (requestsPerMonth / 1e6) * s.usdPerMillionRequests,
      };
    });
    return {
      kind: 'requests',
      label,
      billedPerMessage: bills.reduce((n, b) => n + b.billedPerMessage, 0),
      services: bills,
      usdPerMonth: bills.reduce((n, b) => n + b.usdPerMonth, 0),
    };
  }
  if (!(subject.completionPerSec > 0)) return { kind: 'none', label, reason: 'its runs completed nothing, so what one instance can take is unknown' };
  const instances = Math.max(1, Math.ceil(options.ratePerSec / subject.completionPerSec));
  return {
    kind: 'instances',
    label,
    onePerSec: subject.completionPerSec,
    instances,
    machine: subject.machine,
    ...(options.instanceUsdMonth === undefined ? {} : { usdPerMonth: instances * options.instanceUsdMonth }),
  };
}

/**
 * The rate at which one instance's month (`instanceUsdMonth`) equals the requests' month, at the billed
 * requests per message and prices measured: r × seconds a month × USD per message = instance price.
 */
export function breakEvenRate(instanceUsdMonth: number, usdPerMillionMessages: number): number {
  return instanceUsdMonth / (SECONDS_PER_MONTH * (usdPerMillionMessages / 1e6));
}

/** The month of every subject, the break-even rates between the two kinds, and what could not be said. */
export function costOfSubjects(subjects: readonly CostSubject[], options: CostOptions, title?: string): GroupCost {
  const columns = subjects.map((subject) => costOfSubject(subject, options));
  const priced = subjects.filter((_, k) => columns[k]!.kind === 'requests');
  const hosted = subjects.filter((_, k) => columns[k]!.kind === 'instances');
  const notes: string[] = [];
  const breakEven: BreakEven[] = [];
  if (hosted.length > 0 && options.instanceUsdMonth === undefined) {
    notes.push('Instances are counted, not priced: give --instance-usd-month USD (what one instance costs a month) for their cost and the break-even rates.');
  }
  if (priced.length === 0) {
    notes.push(
      `No broker billed per request (${requestPricedAdapters().join(', ')}) is in this ${title === undefined ? 'run' : 'group'}, so there is no break-even rate: ` +
        'run one on the same workload (e.g. QUEUE=REDIS,SQS) to get one.',
    );
  } else if (hosted.length === 0) {
    notes.push(`No self-hosted broker is in this ${title === undefined ? 'run' : 'group'}, so there is no break-even rate.`);
  } else if (options.instanceUsdMonth !== undefined) {
    for (const h of hosted) {
      for (const p of priced) {
        breakEven.push({
          selfHosted: h.label,
          requestPriced: p.label,
          ratePerSec: breakEvenRate(options.instanceUsdMonth, p.requests!.usdPerMillionMessages!),
          onePerSec: h.completionPerSec,
        });
      }
    }
  }
  if (hosted.length > 0) {
    notes.push(
      'Instances: each is taken to complete what one completed here, on a machine like this one (the result files record it), ' +
        'with the harness beside the broker; a pair for failover is twice the price.',
    );
  }
  return { ...(title === undefined ? {} : { title }), columns, breakEven, notes };
}

export function costOfGroup(group: Group, options: CostOptions): GroupCost {
  const cost = costOfSubjects(group.columns.map(subjectOfColumn), options, group.title);
  const held = Number(group.settings['ratePerSec'] ?? 0) > 0 || group.settings['headlineRatePerSec'] !== undefined;
  if (!held) return cost;
  return {
    ...cost,
    notes: [
      ...cost.notes,
      'These runs were held to a fixed publish rate, so their completion rate is the rate they were given, not what one instance can take: run the throughput scenario to size instances.',
    ],
  };
}

export function costOfRun(result: ResultFile, options: CostOptions): GroupCost {
  return costOfSubjects([subjectOfRun(result)], options);
}

// ---- rendering ----------------------------------------------------------------------------------

/** `$1,234.56`. */
export function formatUsd(usd: number): string {
  return usd.toLocaleString('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** A rate as given or worked out, never rounded to nothing: `200/s`, `0.5/s`, `95.1/s`. */
function formatAnyRate(perSec: number): string {
  return perSec >= 1000 ? formatRate(perSec) : `${perSec.toLocaleString('en-US', { maximumSignificantDigits: 3 })}/s`;
}

/** `cost at a sustained 200/s: 525,600,000 messages a month (730 hours)`. */
export function costHeading(options: CostOptions): string {
  return `cost at a sustained ${formatAnyRate(options.ratePerSec)}: ${formatCount(Math.round(messagesPerMonth(options.ratePerSec)))} messages a month (${HOURS_PER_MONTH} hours)`;
}

/** The three cells of a column's row: label, USD a month, how it was worked out. */
function cells(column: ColumnCost, options: CostOptions): [string, string, string] {
  switch (column.kind) {
    case 'requests': {
      const parts = column.services.map(
        (s) => `${s.service} ${s.tier} ${formatCount(Math.round(s.requestsPerMonth))} requests × $${s.usdPerMillionRequests.toFixed(2)}/M` + (column.services.length > 1 ? ` = ${formatUsd(s.usdPerMonth)}` : ''),
      );
      return [column.label, formatUsd(column.usdPerMonth), `${column.billedPerMessage.toFixed(3)} billed requests per message: ${parts.join('; ')}`];
    }
    case 'instances': {
      const each = options.instanceUsdMonth === undefined ? '' : ` × ${formatUsd(options.instanceUsdMonth)}`;
      return [
        column.label,
        column.usdPerMonth === undefined ? 'n/a (--instance-usd-month)' : formatUsd(column.usdPerMonth),
        `${formatCount(column.instances)} instance${column.instances === 1 ? '' : 's'}${each}: one completed ${formatAnyRate(column.onePerSec)} here, on a machine like this one (${column.machine})`,
      ];
    }
    case 'none':
      return [column.label, 'n/a', column.reason];
  }
}

/** One sentence per break-even rate. */
function breakEvenLines(cost: GroupCost, options: CostOptions): string[] {
  const price = formatUsd(options.instanceUsdMonth ?? 0);
  return cost.breakEven.map((b) =>
    b.ratePerSec < b.onePerSec
      ? `${b.selfHosted} vs ${b.requestPriced}: break-even at ${formatAnyRate(b.ratePerSec)}; above it one ${price} instance costs less than ${b.requestPriced}'s requests (one completed ${formatAnyRate(b.onePerSec)} here).`
      : `${b.selfHosted} vs ${b.requestPriced}: break-even at ${formatAnyRate(b.ratePerSec)}, more than the ${formatAnyRate(b.onePerSec)} one instance completed here, so at any rate its ${price} instances cost at least ${b.requestPriced}'s requests.`,
  );
}

const HEAD = ['', 'a month', 'worked out as'];

/** The cost section for a terminal `width` columns wide: per group, a table fitted to it and the sentences under it. */
export function renderCostTable(costs: readonly GroupCost[], options: CostOptions, width: number): string {
  const sections = costs.map((cost) => {
    const heading = costHeading(options) + (costs.length > 1 && cost.title !== undefined ? `, for ${cost.title}` : '');
    const table = fitTable(cost.columns.map((c) => cells(c, options)), width, { head: HEAD, stackBy: 'row' });
    const lines = [...breakEvenLines(cost, options), ...cost.notes].flatMap((line) => wrap(line, width, '- ', '  '));
    return [wrapLines(heading, width), table, ...lines].join('\n');
  });
  return sections.join('\n\n');
}

export function renderCostMarkdown(costs: readonly GroupCost[], options: CostOptions): string {
  const escape = (text: string): string => text.replace(/\|/g, '\\|').replace(/\*/g, '\\*');
  const line = (row: readonly string[]): string => `| ${row.map(escape).join(' | ')} |`;
  return costs
    .map((cost) => {
      const heading = `### ${escape(costHeading(options) + (cost.title === undefined ? '' : `, for ${cost.title}`))}`;
      const rows = cost.columns.map((c) => line(cells(c, options)));
      const items = [...breakEvenLines(cost, options), ...cost.notes].map((text) => `- ${escape(text)}`);
      return [heading, '', line(HEAD), '| --- | ---: | --- |', ...rows, '', ...items].join('\n');
    })
    .join('\n\n');
}

/** The cost section as data, for the comparison's JSON (its top-level `cost`). */
export function costJson(costs: readonly GroupCost[], options: CostOptions): Record<string, unknown> {
  return {
    ratePerSec: options.ratePerSec,
    instanceUsdMonth: options.instanceUsdMonth ?? null,
    hoursPerMonth: HOURS_PER_MONTH,
    messagesPerMonth: messagesPerMonth(options.ratePerSec),
    groups: costs,
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** One group's cost section as an HTML fragment, every text escaped. */
export function costHtml(group: Group, options: CostOptions): string {
  const cost = costOfGroup(group, options);
  const row = (c: ColumnCost): string => {
    const [label, usd, how] = cells(c, options);
    return `<tr><th scope="row">${escapeHtml(label)}</th><td>${escapeHtml(usd)}</td><td class="how" style="text-align: left; white-space: normal">${escapeHtml(how)}</td></tr>`;
  };
  const items = [...breakEvenLines(cost, options), ...cost.notes].map((text) => `<li>${escapeHtml(text)}</li>`).join('');
  return (
    `<section class="cost"><h3>${escapeHtml(costHeading(options))}</h3>` +
    `<table class="cost"><thead><tr>${HEAD.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${cost.columns.map(row).join('')}</tbody></table><ul class="notes">${items}</ul></section>`
  );
}
