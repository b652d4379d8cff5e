// "Did you mean" for names a user types: flags, commands, finding codes.

const distance = (a: string, b: string): number => {
	const row = Array.from({ length: b.length + 1 }, (_, i) => i);
	for (let i = 1; i <= a.length; i++) {
		let prev = row[0] as number;
		row[0] = i;
		for (let j = 1; j <= b.length; j++) {
			const cur = row[j] as number;
			row[j] = Math.min(
				cur + 1,
				(row[j - 1] as number) + 1,
				prev + (a[i - 1] === b[j - 1] ? 0 : 1),
			);
			prev = cur;
		}
	}
	return row[b.length] as number;
};

/** The closest known name (edit distance at most a third of its length, at least 2), for "did you mean" hints. */
export function suggest(name: string, known: readonly string[]): string | undefined {
	const best = known.map((k) => ({ k, d: distance(name, k) })).sort((a, b) => a.d - b.d)[0];
	return best && best.d <= Math.max(2, Math.floor(name.length / 3)) ? best.k : undefined;
}
