// Where a queue lives on a Redis Cluster. Every key of a queue carries one hash tag, so its scripts,
// pipelines and blocking moves stay in one slot; the tag is chosen so that the queues of a run spread
// over the masters: a queue whose name ends in a number n goes to master n mod M (name-0, name-1,
// name-2 … on masters 0, 1, 2 …), any other by a hash of its name. Masters are counted in the order of
// their lowest slot, and a tag is `<queue>:<salt>` with the smallest salt whose slot a master serves, so
// every process that sees the same slot map makes the same keys, with nothing stored on the server.
//
// LIMITATION: slots that move while a run goes on (resharding) move its queues with them, and a process
// that opens during a move may count the masters otherwise; the tags hold for a cluster whose slots
// stay where they are, as a benchmark's do.

/** Slots of a Redis Cluster. */
export const SLOTS = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The slot Redis Cluster gives `key`: of its hash tag (the text inside its first `{…}`, if not empty), else of the whole key. */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % SLOTS;
  }
  return crc16(bytes) % SLOTS;
}

/** The node keys (`host:port`, the master first) serving each slot, as ioredis's Cluster keeps them. */
export type SlotMap = readonly (readonly string[] | undefined)[];

/** The masters of a slot map and which queue goes where; built once per open, from the first client's map. */
export class ClusterPlacement {
  /** Per master, in the order of its lowest slot: whether it serves each slot. */
  readonly #served: Uint8Array[];
  readonly #tags = new Map<string, string>();

  constructor(slots: SlotMap) {
    const byMaster = new Map<string, Uint8Array>();
    for (let slot = 0; slot < SLOTS; slot++) {
      const master = slots[slot]?.[0];
      if (master === undefined) continue;
      let served = byMaster.get(master);
      if (served === undefined) byMaster.set(master, (served = new Uint8Array(SLOTS)));
      served[slot] = 1;
    }
    // Map order is insertion order: the master of the lowest slot first.
    this.#served = [...byMaster.values()];
    if (this.#served.length === 0) throw new Error('the cluster serves no slot yet');
  }

  /** How many masters the slots are spread over. */
  get masters(): number {
    return this.#served.length;
  }

  /** The hash tag of `queue`'s keys (without braces): `<queue>:<salt>`, on the master the queue's name picks. */
  tag(queue: string): string {
    let tag = this.#tags.get(queue);
    if (tag === undefined) {
      const served = this.#served[masterIndex(queue, this.#served.length)]!;
      // A master serves about 1/M of the slots, so a few salts find one; the bound only guards a map with holes.
      for (let salt = 0; salt < 100 * SLOTS && tag === undefined; salt++) {
        if (served[keySlot(`{${queue}:${salt}}`)] === 1) tag = `${queue}:${salt}`;
      }
      tag ??= queue;
      this.#tags.set(queue, tag);
    }
    return tag;
  }

  /** The slot of `queue`'s keys. */
  slot(queue: string): number {
    return keySlot(`{${this.tag(queue)}}`);
  }
}

/** The master a queue goes to: its name's trailing number modulo `masters`, else a hash of the name. */
function masterIndex(queue: string, masters: number): number {
  const number = /(\d+)$/.exec(queue)?.[1];
  const n = number === undefined ? crc16(Buffer.from(queue, 'utf8')) : Number(number.slice(-9));
  return n % masters;
}

/** True if a queue name can sit inside a hash tag (no braces, which would end or move the tag). */
export function fitsHashTag(name: string): boolean {
  return !/[{}]/.test(name);
}
