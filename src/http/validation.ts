// Validation failures in words a person can act on. Ajv's own messages name neither the field
// nor the fix ("must NOT have additional properties", "must match pattern \"^[1-9]…\""): here
// each failure names its field, says what is allowed (from the schema's description), and the
// usual mistake, a flat {"event_id":1,"qty":2} where {"hold":{…}} was wanted, says where the
// field belongs.
import type { FastifyError, FastifyRequest } from 'fastify';

interface Issue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: { description?: string; type?: string };
}

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
}

const WHERE: Record<string, string> = { body: 'body', params: 'path', querystring: 'query string', headers: 'headers' };

export interface ValidationDetails {
  detail: string;
  errors: Array<{ path: string; message: string }>;
}

export function describeValidation(error: FastifyError, request: FastifyRequest): ValidationDetails {
  const context = error.validationContext ?? 'body';
  const schema = (request.routeOptions.schema as Record<string, SchemaNode | undefined> | undefined)?.[context];
  const seen = new Set<string>();
  const errors = (error.validation as unknown as Issue[])
    .map((issue) => ({ path: `${context}${issue.instancePath}`, message: explain(issue, schema) }))
    .filter((entry) => !seen.has(entry.path + entry.message) && seen.add(entry.path + entry.message));
  const list = errors.map((entry) => `${entry.path.replace(/^[a-z]+\/?/, '') || context}: ${entry.message}`);
  return { detail: `the request ${WHERE[context] ?? context} is invalid: ${list.join('; ')}`, errors };
}

function explain(issue: Issue, schema: SchemaNode | undefined): string {
  const described = issue.parentSchema?.description;
  switch (issue.keyword) {
    case 'additionalProperties': {
      const field = String(issue.params.additionalProperty);
      const owner = issue.instancePath === '' ? wrapperOf(field, schema) : undefined;
      if (owner !== undefined)
        return `unknown field "${field}": it belongs inside "${owner}", as {"${owner}": {"${field}": …}}`;
      return `unknown field "${field}"`;
    }
    case 'required':
      return `the field "${String(issue.params.missingProperty)}" is missing`;
    case 'pattern':
    case 'format':
    case 'enum':
      return described === undefined ? (issue.message ?? 'is invalid') : `must be ${described}`;
    case 'type': {
      const type = String(issue.params.type);
      const article = /^[aeiou]/.test(type) ? 'an' : 'a';
      return `must be ${article} ${type}${type === 'integer' || type === 'number' ? ' (a JSON number, not a string)' : ''}`;
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${issue.keyword.endsWith('inimum') ? 'at least' : 'at most'} ${String(issue.params.limit)}${described === undefined ? '' : ` (${described})`}`;
    case 'minLength':
    case 'maxLength':
      return `must be ${issue.keyword === 'minLength' ? 'at least' : 'at most'} ${String(issue.params.limit)} characters long`;
    default:
      return issue.message ?? 'is invalid';
  }
}

/** The top-level field whose object holds `field`, e.g. "hold" for "event_id". */
function wrapperOf(field: string, schema: SchemaNode | undefined): string | undefined {
  for (const [name, property] of Object.entries(schema?.properties ?? {})) {
    if (property.properties !== undefined && field in property.properties) return name;
  }
  return undefined;
}
