/** Callers waiting for a loop to reach a position in the log (`waitFor`). */
export class PositionWaiters {
  #position = 0;
  #ended: string | undefined;
  #waiters: { position: number; resolve: () => void; reject: (error: Error) => void }[] = [];

  /** The last position reached. */
  get position(): number {
    return this.#position;
  }

  /** Resolves once `position` is reached; rejects if the loop ends first. */
  waitFor(position: number): Promise<void> {
    if (this.#position >= position) return Promise.resolve();
    if (this.#ended !== undefined) return Promise.reject(new Error(`${this.#ended} at position ${this.#position}`));
    return new Promise((resolve, reject) => this.#waiters.push({ position, resolve, reject }));
  }

  /** Records that `position` was reached and wakes those waiting for it. */
  reach(position: number): void {
    this.#position = position;
    this.#waiters = this.#waiters.filter((waiter) => {
      if (waiter.position > position) return true;
      waiter.resolve();
      return false;
    });
  }

  /** The loop ended (`why`, e.g. "subscription faulted"): all current and later waits reject. */
  end(why: string): void {
    this.#ended ??= why;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error(`${why} at position ${this.#position}`));
  }
}
