/**
 * A sleep that can be cut short. A wake that arrives while nobody sleeps is remembered, so a
 * notification that lands between "read found nothing" and "go to sleep" is not lost.
 */
export class Wakeup {
  #pending = false;
  #resolve: (() => void) | undefined;

  /** Ends the current sleep, or the next one if nobody sleeps now. */
  wake(): void {
    this.#pending = true;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    resolve?.();
  }

  /** Forgets wakes that came before a read which will see their events anyway. */
  clear(): void {
    this.#pending = false;
  }

  /** Sleeps up to `ms`, less if woken. Returns at once if a wake is pending. */
  async sleep(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#resolve = undefined;
        resolve();
      }, ms);
      this.#resolve = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#pending = false;
  }
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
