// Permission patterns are regular expressions searched (not anchored) in a resource name, as in
// RabbitMQ: users write "^orders\." or "^(a|b)$". "" matches nothing. Compiled patterns are
// cached, since every publish checks one.

export const DEFAULT_PATTERN_CACHE_SIZE = 1_000;

export class PatternMatcher {
  /** pattern → its RegExp, or null when it does not compile (it then matches nothing). */
  private readonly compiled = new Map<string, RegExp | null>();

  constructor(readonly maxPatterns: number = DEFAULT_PATTERN_CACHE_SIZE) {
    if (!Number.isSafeInteger(maxPatterns) || maxPatterns <= 0) throw new RangeError(`maxPatterns must be a positive integer, got ${maxPatterns}`);
  }

  matches(pattern: string, name: string): boolean {
    if (pattern === "") return false;
    const re = this.compile(pattern);
    return re?.test(name) === true;
  }

  get size(): number {
    return this.compiled.size;
  }

  private compile(pattern: string): RegExp | null {
    const known = this.compiled.get(pattern);
    if (known !== undefined) return known;
    // Patterns change rarely; on overflow start over rather than track recency on every check.
    if (this.compiled.size >= this.maxPatterns) this.compiled.clear();
    let re: RegExp | null;
    try {
      re = new RegExp(pattern);
    } catch {
      re = null;
    }
    this.compiled.set(pattern, re);
    return re;
  }
}

/** The error message when a pattern does not compile, or undefined; for validating SetPermissions. */
export function patternError(pattern: string): string | undefined {
  if (pattern === "") return undefined;
  try {
    new RegExp(pattern);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
