/** One column of a table: its header and how to read a cell from a row. */
export interface Column<Row> {
  header: string;
  value(row: Row): string;
}

/**
 * Renders rows as a plain-text table: upper-case headers, columns padded to
 * their widest cell and two spaces apart, no trailing spaces.
 */
export function renderTable<Row>(columns: Column<Row>[], rows: readonly Row[]): string {
  const cells = [columns.map((column) => column.header.toUpperCase()), ...rows.map((row) => columns.map((column) => column.value(row)))];
  const widths = columns.map((_, index) => Math.max(...cells.map((line) => [...line[index]!].length)));
  return cells
    .map((line) =>
      line
        .map((cell, index) => (index === line.length - 1 ? cell : cell + " ".repeat(widths[index]! - [...cell].length)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
