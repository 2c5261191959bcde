import { SchemaValidationError, type Interceptor } from 'slonik';

/**
 * Validates every row of a typed query (`sql.type(schema)`) against its zod schema and
 * returns the parsed row. Slonik carries the schema on the query but does not run it by
 * itself; without this interceptor a wrong column type would flow silently into the app.
 */
export const createResultParserInterceptor = (): Interceptor => ({
  name: 'chatter/result-parser',
  transformRowAsync: async (queryContext, query, row) => {
    const { resultParser } = queryContext;
    if (resultParser === undefined) {
      return row;
    }
    const result = await resultParser['~standard'].validate(row);
    if (result.issues !== undefined) {
      throw new SchemaValidationError(query, row, result.issues);
    }
    return result.value as typeof row;
  },
});
