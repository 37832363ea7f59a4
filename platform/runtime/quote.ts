// Strings that came from the network or from another local user go into logs only through
// quote(): cut to `max` characters (the cut says how long the original was) and with control
// characters, quotes and backslashes escaped, so a hostile value can neither flood a log nor
// forge a line in it.

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029"\\]/g;

function escapeChar(c: string): string {
  if (c === '"' || c === '\\') return `\\${c}`;
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** `s` (a string, or anything: then its type) quoted, escaped and cut to `max` characters. */
export function quote(s: unknown, max = 80): string {
  if (typeof s !== 'string') return s === null || s === undefined ? String(s) : `<${typeof s}>`;
  const cut = s.length > max ? s.slice(0, max) : s;
  const body = `"${cut.replace(CONTROL, escapeChar)}"`;
  return s.length > max ? `${body}…(${s.length} chars)` : body;
}
