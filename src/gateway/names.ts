/** Close names for "did you mean" hints (404 unknown model). */
export function closestNames(name: string, candidates: readonly string[], max = 3): string[] {
  const scored: { c: string; d: number }[] = [];
  const a = name.toLowerCase();
  for (const c of candidates) {
    const b = c.toLowerCase();
    const d = b.includes(a) || a.includes(b) ? 0 : distance(a, b);
    if (d <= Math.max(2, Math.floor(Math.max(a.length, b.length) / 3))) scored.push({ c, d });
  }
  scored.sort((x, y) => x.d - y.d || x.c.localeCompare(y.c));
  return scored.slice(0, max).map((s) => s.c);
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}
