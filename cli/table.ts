// The one table renderer of the CLI (status, state, peers, package status): aligned columns that
// fit the width (80 columns unless told), the widest shrinkable cells cut with `…`; `wide` shows
// every cell in full.

export interface Column {
  readonly header: string;
  /** Right-aligned (numbers). */
  readonly right?: boolean;
  /** Never cut (short fixed values such as a state or a pid). */
  readonly keep?: boolean;
  /** Narrowest it is cut to (default: its header's width, at least 6). */
  readonly min?: number;
}

export interface TableOptions {
  /** Total width, indent included; default 80. */
  readonly width?: number;
  /** Show every cell in full, whatever the width. */
  readonly wide?: boolean;
  /** Spaces before each line. */
  readonly indent?: number;
}

export const TABLE_WIDTH = 80;
const GAP = 2;

/** Cuts `s` to `width` characters, the last being `…` when anything was cut. */
export function truncate(s: string, width: number): string {
  if (s.length <= width) return s;
  if (width <= 0) return '';
  return `${s.slice(0, width - 1)}…`;
}

export function renderTable(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>, options: TableOptions = {}): string[] {
  const indent = options.indent ?? 0;
  const width = options.width ?? TABLE_WIDTH;
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  if (options.wide !== true) {
    const total = (): number => indent + widths.reduce((a, b) => a + b, 0) + GAP * (columns.length - 1);
    const floor = columns.map((c, i) => (c.keep === true ? widths[i]! : Math.min(widths[i]!, c.min ?? Math.max(6, c.header.length))));
    // Shave the widest column that may still shrink, one character at a time, until it fits.
    while (total() > width) {
      let widest = -1;
      for (let i = 0; i < columns.length; i++) {
        if (widths[i]! > floor[i]! && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
      }
      if (widest < 0) break;
      widths[widest]!--;
    }
  }
  const line = (cells: readonly string[]): string => {
    const parts = columns.map((c, i) => {
      const cell = truncate(cells[i] ?? '', widths[i]!);
      if (i === columns.length - 1 && c.right !== true) return cell;
      return c.right === true ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
    });
    return (' '.repeat(indent) + parts.join(' '.repeat(GAP))).trimEnd();
  };
  return [line(columns.map((c) => c.header)), ...rows.map(line)];
}
