// Error classes shared by every service. Each carries a stable `code` so callers and logs can
// branch on it without parsing messages.

export class NetbootError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Every problem found in a configuration file, reported at once. */
export class ConfigError extends NetbootError {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super('CONFIG_INVALID', `${source}: ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}

/** A protocol decoder's only error: the packet (or document) is malformed. */
export class ProtocolError extends NetbootError {
  constructor(protocol: string, message: string) {
    super(`${protocol.toUpperCase()}_MALFORMED`, `${protocol}: ${message}`);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
