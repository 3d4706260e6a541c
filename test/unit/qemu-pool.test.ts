import { describe, expect, it } from 'vitest';
import { defaultJobs, mapLimit, parseJobs } from '../../src/util/pool.js';
import { UsageError } from '../../src/util/diagnostics.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('mapLimit', () => {
  it('keeps input order and never exceeds the limit', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([50, 10, 30, 5, 20, 1], 2, async (ms, i) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(ms);
      running--;
      return `${i}:${ms}`;
    });
    expect(out).toEqual(['0:50', '1:10', '2:30', '3:5', '4:20', '5:1']);
    expect(peak).toBe(2);
  });

  it('handles empty input and limits larger than the input', async () => {
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
    expect(await mapLimit([1, 2], 99, async (x) => x * 2)).toEqual([2, 4]);
  });

  it('stops starting work after a failure, waits for running calls, rethrows the first error', async () => {
    const started: number[] = [];
    let finished = 0;
    const p = mapLimit([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      if (i === 1) throw new Error('boom');
      await sleep(30);
      finished++;
      return i;
    });
    await expect(p).rejects.toThrow('boom');
    expect(started.length).toBeLessThan(6);
    expect(finished).toBe(started.length - 1); // everything started has completed
  });

  it('stops starting work when aborted', async () => {
    const ac = new AbortController();
    const started: number[] = [];
    const p = mapLimit([0, 1, 2, 3, 4], 1, async (i) => {
      started.push(i);
      if (i === 1) ac.abort(new Error('interrupted'));
      await sleep(5);
      return i;
    }, { signal: ac.signal });
    await expect(p).rejects.toThrow('interrupted');
    expect(started).toEqual([0, 1]);
  });
});

describe('parseJobs', () => {
  it('parses positive integers and defaults to the CPU count', () => {
    expect(parseJobs('3')).toBe(3);
    expect(parseJobs(undefined)).toBe(defaultJobs());
    expect(defaultJobs()).toBeGreaterThanOrEqual(1);
    expect(() => parseJobs('0')).toThrow(UsageError);
    expect(() => parseJobs('two')).toThrow(UsageError);
  });
});
