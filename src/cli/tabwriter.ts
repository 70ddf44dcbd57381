/**
 * Go's text/tabwriter (as docker's tables use it: `NewWriter(out, minwidth, tabwidth, padding, ' ', 0)`):
 * cells end with a tab; a column block is a run of consecutive lines that have a cell in that
 * column; each block is as wide as its widest cell plus padding, at least minwidth. The text after
 * the last tab of a line is not a cell and is never padded.
 */
export function tabwrite(text: string, minwidth: number, padding: number): string {
  const lines = text.split('\n');
  const trailingNewline = lines.length > 1 && lines[lines.length - 1] === '';
  if (trailingNewline) lines.pop();
  const cells = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  const out: string[] = [];
  const width = (s: string) => [...s].length;

  const writeLines = (line0: number, line1: number) => {
    for (let i = line0; i < line1; i++) {
      const line = cells[i]!;
      let s = '';
      line.forEach((c, j) => {
        if (j < line.length - 1 && j < widths.length) s += c + ' '.repeat(Math.max(0, widths[j]! - width(c)));
        else if (j < line.length - 1) s += c;
        else s += c;
      });
      out[i] = s;
    }
  };

  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    for (let th = line0; th < line1; th++) {
      if (column >= cells[th]!.length - 1) continue;
      writeLines(line0, th);
      line0 = th;
      let w = minwidth;
      for (; th < line1; th++) {
        const line = cells[th]!;
        if (column >= line.length - 1) break;
        const cw = width(line[column]!) + padding;
        if (cw > w) w = cw;
      }
      widths.push(w);
      format(line0, th);
      widths.pop();
      line0 = th;
      th--;
    }
    writeLines(line0, line1);
  };
  format(0, cells.length);
  return out.join('\n') + (trailingNewline ? '\n' : '');
}
