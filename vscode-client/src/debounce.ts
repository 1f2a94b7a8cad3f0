/** Runs an action once a burst of triggers has gone quiet (settings edits arrive key by key). */

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class Debouncer {
  private handle: unknown;

  constructor(
    private readonly action: () => void,
    private readonly delayMs: number,
    private readonly timers: Timers = realTimers,
  ) {}

  trigger(): void {
    this.cancel();
    this.handle = this.timers.setTimeout(() => {
      this.handle = undefined;
      this.action();
    }, this.delayMs);
  }

  get pending(): boolean {
    return this.handle !== undefined;
  }

  cancel(): void {
    if (this.handle !== undefined) {
      this.timers.clearTimeout(this.handle);
      this.handle = undefined;
    }
  }
}
