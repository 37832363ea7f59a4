// A histogram for a hot path: observe() is an array increment and a bucket scan (prom-client's
// own Histogram hashes its labels on every observation); the registry reads it at scrape time.
// Its one label takes a fixed list of values, given at construction.
import type { Registry } from 'prom-client';

export class HotHistogram {
  private readonly counts: Float64Array[];
  private readonly sums: Float64Array;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly label: string,
    private readonly labelValues: readonly string[],
    private readonly buckets: readonly number[],
    registers: Registry[],
  ) {
    this.counts = labelValues.map(() => new Float64Array(buckets.length + 1));
    this.sums = new Float64Array(labelValues.length);
    for (const r of registers) r.registerMetric(this as never);
  }

  /** `index` into the label values given at construction. */
  observe(index: number, value: number): void {
    const c = this.counts[index];
    if (c === undefined) return;
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    c[i]!++;
    this.sums[index]! += value;
  }

  /** What prom-client's registry asks of a metric. */
  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> } {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    this.labelValues.forEach((lv, n) => {
      const c = this.counts[n]!;
      let total = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        total += c[i]!;
        values.push({ labels: { le: i < this.buckets.length ? this.buckets[i]! : '+Inf', [this.label]: lv }, value: total, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { [this.label]: lv }, value: this.sums[n]!, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.label]: lv }, value: total, metricName: `${this.name}_count` });
    });
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }

  reset(): void {
    for (const c of this.counts) c.fill(0);
    this.sums.fill(0);
  }
}
