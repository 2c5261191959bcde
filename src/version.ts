import packageJson from '../package.json' with { type: 'json' };

export const SERVICE_NAME = 'chatter';
export const SERVICE_VERSION: string = packageJson.version;
