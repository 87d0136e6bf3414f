// Reads CSV back as RFC 4180 defines it, character by character, so the tests check the writer
// against the format rather than against itself: quoted fields may hold commas, doubled quotes and
// line breaks; records end in LF or CRLF.

export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let k = 0;
  while (k < text.length) {
    const ch = text[k]!;
    if (quoted) {
      if (ch === '"' && text[k + 1] === '"') {
        field += '"';
        k += 2;
        continue;
      }
      if (ch === '"') quoted = false;
      else field += ch;
      k += 1;
      continue;
    }
    if (ch === '"') {
      if (field !== '') throw new Error(`a quote inside an unquoted field at ${k}`);
      quoted = true;
    } else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\n' || (ch === '\r' && text[k + 1] === '\n')) {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      if (ch === '\r') k += 1;
    } else {
      field += ch;
    }
    k += 1;
  }
  if (quoted) throw new Error('a quoted field is never closed');
  if (field !== '' || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  return records;
}

/** CSV as objects keyed by the header row; every record must have the header's field count. */
export function csvRecords(text: string): Record<string, string>[] {
  const [head, ...rows] = parseCsv(text);
  if (!head) return [];
  return rows.map((row, k) => {
    if (row.length !== head.length) throw new Error(`record ${k + 1} has ${row.length} fields, the header ${head.length}`);
    return Object.fromEntries(head.map((name, i) => [name, row[i]!]));
  });
}
