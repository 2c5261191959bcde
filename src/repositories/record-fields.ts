import { sql, type FragmentSqlToken, type ValueExpression } from 'slonik';
import { z } from 'zod';

/**
 * One column of a user-editable record (profiles, prompts), described once: the JSON
 * Schemas of the create, update and response bodies, the zod row schema and the SQL
 * of inserts and updates are all derived from the list, so they cannot disagree.
 */
export type FieldSpec = {
  readonly name: string;
  readonly kind: 'text' | 'number' | 'integer' | 'boolean' | 'json';
  /** The value's JSON Schema in a request (bounds included), without the null. */
  readonly schema: Record<string, unknown>;
  /** The column may hold null (the request may send null to clear it). */
  readonly nullable: boolean;
  /** The value a create without the field stores (required for non-nullable fields). */
  readonly default?: unknown;
  readonly description: string;
  /** Bounds of the create body only (the contract's update body is looser for some fields). */
  readonly createOnly?: Record<string, unknown>;
};

/**
 * The schema, also allowing null: a type list rather than `anyOf`, which fast-json-stringify
 * serialises without compiling a validator per branch (dozens of nullable fields per record).
 */
export const orNull = (schema: Record<string, unknown>): Record<string, unknown> => {
  const { type, enum: values, ...rest } = schema;
  return {
    ...rest,
    type: [...(Array.isArray(type) ? (type as unknown[]) : [type]), 'null'],
    ...(Array.isArray(values) ? { enum: [...(values as unknown[]), null] } : {}),
  };
};

/** Properties of the create body: nullable fields accept null; the others have their default. */
export const createProperties = (fields: readonly FieldSpec[]) =>
  Object.fromEntries(
    fields.map((field) => {
      const schema = { ...field.schema, ...field.createOnly };
      return [
        field.name,
        field.nullable
          ? { ...orNull(schema), description: field.description }
          : { ...schema, ...(field.default === undefined ? {} : { default: field.default }), description: field.description },
      ];
    }),
  );

/** Properties of the update body: every field optional and nullable (null on a non-nullable field leaves it). */
export const updateProperties = (fields: readonly FieldSpec[]) =>
  Object.fromEntries(fields.map((field) => [field.name, { ...orNull(field.schema), description: field.description }]));

/** The stored value's JSON Schema in a response (the request bounds dropped, so any stored value serialises). */
const responseSchemaOf = (field: FieldSpec): Record<string, unknown> => {
  const { type, items, additionalProperties, enum: values } = field.schema as Record<string, unknown>;
  return {
    ...(type === undefined ? {} : { type }),
    ...(items === undefined ? {} : { items }),
    ...(additionalProperties === undefined ? {} : { additionalProperties }),
    ...(values === undefined ? {} : { enum: values }),
  };
};

export const responseProperties = (fields: readonly FieldSpec[]) =>
  Object.fromEntries(
    fields.map((field) => [
      field.name,
      field.nullable
        ? { ...orNull(responseSchemaOf(field)), description: field.description }
        : { ...responseSchemaOf(field), description: field.description },
    ]),
  );

const zodOfKind = (field: FieldSpec): z.ZodType => {
  switch (field.kind) {
    case 'text':
      return z.string();
    case 'number':
      return z.number();
    case 'integer':
      return z.number().int();
    case 'boolean':
      return z.boolean();
    case 'json':
      return z.unknown();
  }
};

/** The zod shape of the fields' columns as read back. */
export const zodShapeOf = (fields: readonly FieldSpec[]): Record<string, z.ZodType> =>
  Object.fromEntries(fields.map((field) => [field.name, field.nullable ? zodOfKind(field).nullable() : zodOfKind(field)]));

const valueOf = (field: FieldSpec, value: unknown): ValueExpression => {
  if (value === null || value === undefined) {
    return null;
  }
  return field.kind === 'json' ? sql.jsonb(value as never) : (value as ValueExpression);
};

/** Column identifiers and values of an insert: the body's value, else the field's default, else null. */
export const insertColumns = (
  fields: readonly FieldSpec[],
  values: Readonly<Record<string, unknown>>,
): { columns: FragmentSqlToken; values: FragmentSqlToken } => ({
  columns: sql.fragment`${sql.join(
    fields.map((field) => sql.identifier([field.name])),
    sql.fragment`, `,
  )}`,
  values: sql.fragment`${sql.join(
    fields.map((field) => valueOf(field, values[field.name] ?? field.default ?? null)),
    sql.fragment`, `,
  )}`,
});

/**
 * SET items of an update: a field present in `changes` is written; null clears a
 * nullable field and leaves a non-nullable one as it is.
 */
export const updateSets = (fields: readonly FieldSpec[], changes: Readonly<Record<string, unknown>>): FragmentSqlToken[] =>
  fields
    .filter((field) => changes[field.name] !== undefined && (changes[field.name] !== null || field.nullable))
    .map((field) => sql.fragment`${sql.identifier([field.name])} = ${valueOf(field, changes[field.name])}`);
