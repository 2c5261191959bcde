/**
 * Prompt templates: their placeholders, the check that a template and its declared
 * variables agree, and rendering. Pure functions, no I/O.
 *
 * Formats (the contract's `template_format`):
 * - `f-string` (default): `{name}`; `{{` and `}}` are literal braces, as in Python.
 * - `mustache` and `jinja2`: `{{name}}` / `{{ name }}`; only plain substitution is
 *   supported (no sections, blocks, filters or comments), anything else is refused.
 * A variable name is an identifier: a letter or `_`, then letters, digits or `_`.
 */

export const TEMPLATE_FORMATS = ['f-string', 'mustache', 'jinja2'] as const;
export type TemplateFormat = (typeof TEMPLATE_FORMATS)[number];

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A template problem: `field` is the request field it concerns, `type` a stable code. */
export type TemplateIssue = { readonly field: string; readonly message: string; readonly type: string; readonly variable?: string };

/** A piece of a parsed template: literal text or a variable. */
type Part = { readonly text: string } | { readonly variable: string };

type Parsed = { readonly parts: readonly Part[]; readonly issues: readonly TemplateIssue[] };

const contentIssue = (message: string, type: string, variable?: string): TemplateIssue => ({
  field: 'content',
  message,
  type,
  ...(variable === undefined ? {} : { variable }),
});

const parseFString = (content: string): Parsed => {
  const parts: Part[] = [];
  const issues: TemplateIssue[] = [];
  let text = '';
  for (let index = 0; index < content.length; index += 1) {
    const char = content[index];
    if (char === '{' && content[index + 1] === '{') {
      text += '{';
      index += 1;
    } else if (char === '}' && content[index + 1] === '}') {
      text += '}';
      index += 1;
    } else if (char === '{') {
      const end = content.indexOf('}', index + 1);
      if (end === -1) {
        issues.push(contentIssue(`unclosed "{" at character ${index}: write "{{" for a literal brace`, 'prompt_template.syntax'));
        break;
      }
      const name = content.slice(index + 1, end);
      if (!IDENTIFIER.test(name)) {
        issues.push(
          contentIssue(
            `placeholder "{${name}}" is not a variable name (letters, digits and _; "{{" for a literal brace)`,
            'prompt_template.syntax',
          ),
        );
      }
      parts.push({ text }, { variable: name });
      text = '';
      index = end;
    } else if (char === '}') {
      issues.push(contentIssue(`single "}" at character ${index}: write "}}" for a literal brace`, 'prompt_template.syntax'));
    } else {
      text += char;
    }
  }
  parts.push({ text });
  return { parts, issues };
};

const parseDoubleBrace = (content: string, format: 'mustache' | 'jinja2'): Parsed => {
  const parts: Part[] = [];
  const issues: TemplateIssue[] = [];
  if (format === 'jinja2' && /\{%|\{#/.test(content)) {
    issues.push(
      contentIssue(
        'only {{ variable }} substitution is supported in jinja2 templates (no {% %} blocks or {# #} comments)',
        'prompt_template.unsupported',
      ),
    );
  }
  let from = 0;
  for (let start = content.indexOf('{{'); start !== -1; start = content.indexOf('{{', from)) {
    const end = content.indexOf('}}', start + 2);
    if (end === -1) {
      issues.push(contentIssue(`unclosed "{{" at character ${start}`, 'prompt_template.syntax'));
      break;
    }
    const name = content.slice(start + 2, end).trim();
    if (!IDENTIFIER.test(name)) {
      issues.push(
        contentIssue(
          `"{{${content.slice(start + 2, end)}}}" is not a variable: only {{ name }} substitution is supported`,
          'prompt_template.unsupported',
        ),
      );
    }
    parts.push({ text: content.slice(from, start) }, { variable: name });
    from = end + 2;
  }
  parts.push({ text: content.slice(from) });
  return { parts, issues };
};

const parse = (content: string, format: TemplateFormat): Parsed =>
  format === 'f-string' ? parseFString(content) : parseDoubleBrace(content, format);

export const isTemplateFormat = (format: string): format is TemplateFormat => (TEMPLATE_FORMATS as readonly string[]).includes(format);

/** The distinct variable names the template uses, in order of first use (valid or not). */
export const placeholdersOf = (content: string, format: TemplateFormat): string[] => [
  ...new Set(parse(content, format).parts.flatMap((part) => ('variable' in part ? [part.variable] : []))),
];

export type TemplateDeclaration = {
  readonly content: string;
  readonly format: string;
  /** Declared variables; null: taken from the template's placeholders. */
  readonly variables: readonly string[] | null;
  readonly requiredVariables: readonly string[] | null;
};

/**
 * Checks that the template parses and that its placeholders and declared variables are
 * the same set (each problem names the variable); `required_variables` must be declared.
 * Returns the variables to store (the declared ones, or the template's) and the issues.
 */
export const checkTemplate = (declaration: TemplateDeclaration): { variables: string[]; issues: TemplateIssue[] } => {
  const { content, format } = declaration;
  if (!isTemplateFormat(format)) {
    return {
      variables: [],
      issues: [
        {
          field: 'template_format',
          message: `template_format must be one of ${TEMPLATE_FORMATS.join(', ')}`,
          type: 'prompt_template.format',
        },
      ],
    };
  }
  const parsed = parse(content, format);
  const issues: TemplateIssue[] = [...parsed.issues];
  const used = placeholdersOf(content, format);
  const variables = declaration.variables === null ? used : [...declaration.variables];
  for (const name of variables) {
    if (!IDENTIFIER.test(name)) {
      issues.push({
        field: 'variables',
        message: `variable "${name}" is not a valid name (letters, digits and _)`,
        type: 'prompt_template.variable_name',
        variable: name,
      });
    }
  }
  if (new Set(variables).size !== variables.length) {
    const duplicate = variables.find((name, index) => variables.indexOf(name) !== index) ?? '';
    issues.push({
      field: 'variables',
      message: `variable "${duplicate}" is declared twice`,
      type: 'prompt_template.duplicate_variable',
      variable: duplicate,
    });
  }
  if (declaration.variables !== null && parsed.issues.length === 0) {
    for (const name of used.filter((used) => !variables.includes(used))) {
      issues.push(contentIssue(`the template uses "${name}", which is not in variables`, 'prompt_template.undeclared_variable', name));
    }
    for (const name of variables.filter((declared) => IDENTIFIER.test(declared) && !used.includes(declared))) {
      issues.push({
        field: 'variables',
        message: `variable "${name}" is declared but the template never uses it`,
        type: 'prompt_template.unused_variable',
        variable: name,
      });
    }
  }
  for (const name of declaration.requiredVariables ?? []) {
    if (!variables.includes(name)) {
      issues.push({
        field: 'required_variables',
        message: `required variable "${name}" is not one of the template's variables`,
        type: 'prompt_template.unknown_required_variable',
        variable: name,
      });
    }
  }
  return { variables, issues };
};

/**
 * The template with its variables filled in. A required variable (every variable when
 * `requiredVariables` is null) without a value is an issue naming it; an optional one
 * without a value becomes the empty string. Values are inserted as they are (no
 * template syntax inside a value is interpreted).
 */
export const renderTemplate = (
  declaration: TemplateDeclaration,
  values: Readonly<Record<string, string>>,
): { text: string; issues: TemplateIssue[] } => {
  const format = isTemplateFormat(declaration.format) ? declaration.format : 'f-string';
  const required = declaration.requiredVariables ?? declaration.variables ?? placeholdersOf(declaration.content, format);
  const issues: TemplateIssue[] = required
    .filter((name) => !Object.hasOwn(values, name))
    .map((name) => ({ field: name, message: `the prompt needs a value for "${name}"`, type: 'prompt_variables.missing', variable: name }));
  const text = parse(declaration.content, format)
    .parts.map((part) => ('text' in part ? part.text : Object.hasOwn(values, part.variable) ? values[part.variable] : ''))
    .join('');
  return { text, issues };
};
