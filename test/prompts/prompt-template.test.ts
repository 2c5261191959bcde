import { describe, expect, it } from 'vitest';
import { checkTemplate, placeholdersOf, renderTemplate } from '../../src/prompts/prompt-template.js';

const declare = (content: string, variables: string[] | null, format = 'f-string', requiredVariables: string[] | null = null) => ({
  content,
  format,
  variables,
  requiredVariables,
});

describe('prompt templates', () => {
  it('finds f-string placeholders in order, reading {{ and }} as literal braces', () => {
    expect(placeholdersOf('Hi {name}, {{not}} {topic} and {name}', 'f-string')).toEqual(['name', 'topic']);
    expect(renderTemplate(declare('{{json}} {a}', ['a']), { a: 'x' }).text).toBe('{json} x');
  });

  it('finds mustache and jinja2 placeholders with or without spaces', () => {
    expect(placeholdersOf('Hi {{ name }} and {{topic}}', 'mustache')).toEqual(['name', 'topic']);
    expect(renderTemplate(declare('Hi {{ name }}!', ['name'], 'jinja2'), { name: 'Ada' }).text).toBe('Hi Ada!');
  });

  it('takes the variables from the template when none are declared', () => {
    expect(checkTemplate(declare('Be {tone} about {topic}', null))).toEqual({ variables: ['tone', 'topic'], issues: [] });
  });

  it('names a placeholder that is not declared and a declared variable that is never used', () => {
    const { issues } = checkTemplate(declare('Be {tone} about {topic}', ['tone', 'audience']));
    expect(issues).toEqual([
      expect.objectContaining({
        field: 'content',
        type: 'prompt_template.undeclared_variable',
        variable: 'topic',
        message: expect.stringContaining('"topic"'),
      }),
      expect.objectContaining({
        field: 'variables',
        type: 'prompt_template.unused_variable',
        variable: 'audience',
        message: expect.stringContaining('"audience"'),
      }),
    ]);
  });

  it('refuses broken syntax, bad names, duplicates, unknown required variables and formats', () => {
    const types = (content: string, variables: string[] | null, format = 'f-string', required: string[] | null = null) =>
      checkTemplate(declare(content, variables, format, required)).issues.map((issue) => issue.type);
    expect(types('unclosed {name', null)).toEqual(['prompt_template.syntax']);
    expect(types('stray } brace', null)).toEqual(['prompt_template.syntax']);
    expect(types('{0} and {a.b}', null)).toEqual([
      'prompt_template.syntax',
      'prompt_template.syntax',
      'prompt_template.variable_name',
      'prompt_template.variable_name',
    ]);
    expect(types('{a}', ['a', 'a'])).toEqual(['prompt_template.duplicate_variable']);
    expect(types('{a}', ['a'], 'f-string', ['b'])).toEqual(['prompt_template.unknown_required_variable']);
    expect(types('{% if x %}{{ x }}{% endif %}', null, 'jinja2')).toContain('prompt_template.unsupported');
    expect(types('{{#items}}{{name}}{{/items}}', null, 'mustache')).toContain('prompt_template.unsupported');
    expect(types('{a}', null, 'handlebars')).toEqual(['prompt_template.format']);
  });

  it('renders values as given, reports each missing required variable, and empties missing optional ones', () => {
    const all = renderTemplate(declare('Be {tone} about {topic}', ['tone', 'topic']), { tone: '{topic}' });
    expect(all.issues).toEqual([expect.objectContaining({ type: 'prompt_variables.missing', variable: 'topic' })]);
    expect(all.text).toBe('Be {topic} about ');
    const optional = renderTemplate(declare('Be {tone} about {topic}', ['tone', 'topic'], 'f-string', ['tone']), { tone: 'kind' });
    expect(optional).toEqual({ text: 'Be kind about ', issues: [] });
    expect(renderTemplate(declare('{x}', ['x']), { x: '' })).toEqual({ text: '', issues: [] });
  });
});
