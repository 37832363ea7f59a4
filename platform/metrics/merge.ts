// Merges the text expositions of several processes into one, each sample labelled with the
// service it came from (`service="server"`): one HELP and TYPE line per family, then every
// service's samples of it. Input is what prom-client writes (text format 0.0.4).

export interface Exposition {
  readonly service: string;
  readonly text: string;
}

interface Family {
  help: string | null;
  type: string | null;
  samples: string[];
}

export function mergeExpositions(parts: readonly Exposition[]): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { help: null, type: null, samples: [] }));
    return f;
  };
  for (const { service, text } of parts) {
    const label = `service="${escapeLabel(service)}"`;
    let current: Family | null = null;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (meta !== null) {
        current = family(meta[2]!);
        if (meta[1] === 'HELP') current.help ??= line;
        else current.type ??= line;
        continue;
      }
      if (line.startsWith('#')) continue;
      const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
      if (name === undefined) continue;
      const f = current ?? family(name);
      const rest = line.slice(name.length);
      f.samples.push(rest.startsWith('{') ? `${name}{${label},${rest.slice(1)}` : `${name}{${label}}${rest}`);
    }
  }
  const out: string[] = [];
  for (const f of families.values()) {
    if (f.help !== null) out.push(f.help);
    if (f.type !== null) out.push(f.type);
    out.push(...f.samples);
  }
  return `${out.join('\n')}\n`;
}

export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
