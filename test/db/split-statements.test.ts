import { describe, expect, it } from 'vitest';
import { splitStatements } from '../../src/db/split-statements.js';

describe('splitStatements', () => {
  it('splits at top-level semicolons', () => {
    expect(splitStatements('SELECT 1; SELECT 2;\nSELECT 3')).toEqual(['SELECT 1', 'SELECT 2', 'SELECT 3']);
  });

  it('keeps semicolons inside quotes, identifiers, comments and dollar-quoted bodies', () => {
    const script = [
      "INSERT INTO t VALUES ('a;b', 'it''s; fine');",
      'CREATE TABLE "odd;name" (id int); -- trailing; comment',
      '/* block; /* nested; */ still comment; */ SELECT 2;',
      'CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;',
      'DO $$ BEGIN PERFORM 1; END $$;',
    ].join('\n');
    expect(splitStatements(script)).toEqual([
      "INSERT INTO t VALUES ('a;b', 'it''s; fine')",
      'CREATE TABLE "odd;name" (id int)',
      '-- trailing; comment\n/* block; /* nested; */ still comment; */ SELECT 2',
      'CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql',
      'DO $$ BEGIN PERFORM 1; END $$',
    ]);
  });

  it('drops empty and comment-only statements', () => {
    expect(splitStatements('-- header\n;\n ; /* nothing */ ;SELECT 1;\n-- footer\n')).toEqual(['SELECT 1']);
  });
});
