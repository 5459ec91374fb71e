/**
 * `--max-conns-per-ip` for the loop designs: how many connections each source address holds now. With a limit of 0
 * (the default) it keeps no map at all. A connection that was let in must be released exactly once when it ends.
 */
export class AddressLimit {
  private readonly held = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts a connection from `address`; false (and nothing counted) when the address is at the limit. */
  acquire(address: string): boolean {
    if (this.max === 0) return true;
    const n = this.held.get(address) ?? 0;
    if (n >= this.max) return false;
    this.held.set(address, n + 1);
    return true;
  }

  release(address: string): void {
    if (this.max === 0) return;
    const n = (this.held.get(address) ?? 1) - 1;
    if (n > 0) this.held.set(address, n);
    else this.held.delete(address);
  }
}
