/**
 * Splits a SQL script into its statements at top-level semicolons, skipping those
 * inside quotes, comments and dollar-quoted bodies. The pg driver rejects a query
 * that holds several statements, so a migration file is sent one statement at a time.
 */
export const splitStatements = (script: string): string[] => {
  const statements: string[] = [];
  let start = 0;
  let index = 0;
  const length = script.length;
  const push = (end: number) => {
    const statement = script.slice(start, end).trim();
    if (statement !== '' && !isOnlyComments(statement)) {
      statements.push(statement);
    }
  };
  while (index < length) {
    const char = script[index];
    const next = script[index + 1];
    if (char === '-' && next === '-') {
      const end = script.indexOf('\n', index);
      index = end === -1 ? length : end + 1;
    } else if (char === '/' && next === '*') {
      let depth = 1;
      index += 2;
      while (index < length && depth > 0) {
        if (script[index] === '/' && script[index + 1] === '*') {
          depth += 1;
          index += 2;
        } else if (script[index] === '*' && script[index + 1] === '/') {
          depth -= 1;
          index += 2;
        } else {
          index += 1;
        }
      }
    } else if (char === "'" || char === '"') {
      index += 1;
      while (index < length) {
        if (script[index] === char) {
          if (script[index + 1] === char) {
            index += 2;
            continue;
          }
          break;
        }
        index += 1;
      }
      index += 1;
    } else if (char === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(script.slice(index))?.[0];
      if (tag === undefined) {
        index += 1;
      } else {
        const end = script.indexOf(tag, index + tag.length);
        index = end === -1 ? length : end + tag.length;
      }
    } else if (char === ';') {
      push(index);
      index += 1;
      start = index;
    } else {
      index += 1;
    }
  }
  push(length);
  return statements;
};

const isOnlyComments = (statement: string): boolean =>
  statement
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .every((line) => line.trim() === '' || line.trim().startsWith('--'));
