import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as GrpcServer, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';

/** One span as a receiver decoded it, the same whatever the wire format. */
export type ReceivedSpan = {
  readonly name: string;
  readonly traceId: string;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  /** The attributes of the span's resource. */
  readonly resource: Readonly<Record<string, string | number | boolean>>;
};

export type OtlpRequest = { readonly path: string; readonly contentType: string | undefined; readonly spans: ReceivedSpan[] };

export type OtlpReceiver = {
  /** Base URL (HTTP) or `http://host:port` (gRPC). */
  readonly url: string;
  readonly requests: OtlpRequest[];
  readonly spans: () => ReceivedSpan[];
  readonly close: () => Promise<void>;
};

// --- OTLP protobuf (opentelemetry/proto/collector/trace/v1), the fields a test needs ---

type Field = { readonly field: number; readonly varint?: bigint; readonly bytes?: Uint8Array; readonly fixed64?: Buffer };

const readVarint = (buffer: Uint8Array, start: number): [bigint, number] => {
  let value = 0n;
  let shift = 0n;
  let position = start;
  for (;;) {
    const byte = buffer[position++];
    if (byte === undefined) {
      throw new Error('truncated protobuf varint');
    }
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) {
      return [value, position];
    }
  }
};

/** Splits one protobuf message into its fields (wire types 0, 1, 2 and 5). */
const fieldsOf = (buffer: Uint8Array): Field[] => {
  const fields: Field[] = [];
  let position = 0;
  while (position < buffer.length) {
    const [tag, afterTag] = readVarint(buffer, position);
    const field = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    position = afterTag;
    if (wireType === 0) {
      const [varint, next] = readVarint(buffer, position);
      fields.push({ field, varint });
      position = next;
    } else if (wireType === 1) {
      fields.push({ field, fixed64: Buffer.from(buffer.subarray(position, position + 8)) });
      position += 8;
    } else if (wireType === 2) {
      const [length, next] = readVarint(buffer, position);
      fields.push({ field, bytes: buffer.subarray(next, next + Number(length)) });
      position = next + Number(length);
    } else if (wireType === 5) {
      position += 4;
    } else {
      throw new Error(`unsupported protobuf wire type ${wireType}`);
    }
  }
  return fields;
};

const text = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString('utf8');
const messages = (fields: Field[], number: number): Uint8Array[] =>
  fields.filter((field) => field.field === number && field.bytes !== undefined).map((field) => field.bytes!);

/** KeyValue { key = 1; AnyValue value = 2 { string = 1; bool = 2; int = 3; double = 4 } } */
const protobufAttributes = (keyValues: Uint8Array[]): Record<string, string | number | boolean> =>
  Object.fromEntries(
    keyValues.map((keyValue) => {
      const fields = fieldsOf(keyValue);
      const key = text(messages(fields, 1)[0]);
      const value = fieldsOf(messages(fields, 2)[0] ?? new Uint8Array())[0];
      if (value?.field === 1) {
        return [key, text(value.bytes)];
      }
      if (value?.field === 2) {
        return [key, value.varint === 1n];
      }
      if (value?.field === 3) {
        return [key, Number(BigInt.asIntN(64, value.varint ?? 0n))];
      }
      if (value?.field === 4) {
        return [key, value.fixed64?.readDoubleLE(0) ?? Number.NaN];
      }
      return [key, '(unsupported value)'];
    }),
  );

/** Decodes an ExportTraceServiceRequest: resource_spans = 1 { resource = 1, scope_spans = 2 { spans = 2 } }. */
export const decodeProtobufRequest = (body: Uint8Array): ReceivedSpan[] =>
  messages(fieldsOf(body), 1).flatMap((resourceSpans) => {
    const fields = fieldsOf(resourceSpans);
    const resource = protobufAttributes(messages(fieldsOf(messages(fields, 1)[0] ?? new Uint8Array()), 1));
    return messages(fields, 2).flatMap((scopeSpans) =>
      messages(fieldsOf(scopeSpans), 2).map((span) => {
        const spanFields = fieldsOf(span);
        return {
          traceId: Buffer.from(messages(spanFields, 1)[0] ?? []).toString('hex'),
          name: text(messages(spanFields, 5)[0]),
          attributes: protobufAttributes(messages(spanFields, 9)),
          resource,
        };
      }),
    );
  });

// --- OTLP/JSON ---

type JsonValue = { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
type JsonKeyValue = { key: string; value: JsonValue };
type JsonRequest = {
  resourceSpans?: {
    resource?: { attributes?: JsonKeyValue[] };
    scopeSpans?: { spans?: { traceId: string; name: string; attributes?: JsonKeyValue[] }[] }[];
  }[];
};

const jsonAttributes = (keyValues: JsonKeyValue[] = []): Record<string, string | number | boolean> =>
  Object.fromEntries(
    keyValues.map(({ key, value }) => [
      key,
      value.stringValue ??
        value.boolValue ??
        (value.intValue === undefined ? value.doubleValue : Number(value.intValue)) ??
        '(unsupported value)',
    ]),
  );

/** Decodes an OTLP/JSON ExportTraceServiceRequest (ids as hex strings, as the spec says). */
export const decodeJsonRequest = (body: Buffer): ReceivedSpan[] =>
  ((JSON.parse(body.toString('utf8')) as JsonRequest).resourceSpans ?? []).flatMap((resourceSpans) => {
    const resource = jsonAttributes(resourceSpans.resource?.attributes);
    return (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
      (scopeSpans.spans ?? []).map((span) => ({
        traceId: span.traceId,
        name: span.name,
        attributes: jsonAttributes(span.attributes),
        resource,
      })),
    );
  });

// --- receivers ---

const spansOf = (requests: OtlpRequest[]) => () => requests.flatMap((request) => request.spans);

/**
 * A loopback OTLP/HTTP receiver: decodes each request by its content type
 * (`application/json` or `application/x-protobuf`) and answers as a collector does.
 */
export const startHttpReceiver = async (): Promise<OtlpReceiver> => {
  const requests: OtlpRequest[] = [];
  const server: Server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = request.headers['content-type'];
      const json = contentType?.startsWith('application/json') === true;
      requests.push({ path: request.url ?? '', contentType, spans: json ? decodeJsonRequest(body) : decodeProtobufRequest(body) });
      response.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      response.end(json ? '{}' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    spans: spansOf(requests),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
};

const identity = (value: Buffer): Buffer => value;

/** The collector's TraceService, with the messages left as bytes (decoded by the test). */
const TRACE_SERVICE: ServiceDefinition = {
  Export: {
    path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** A loopback OTLP/gRPC receiver (insecure, on 127.0.0.1). */
export const startGrpcReceiver = async (): Promise<OtlpReceiver> => {
  const requests: OtlpRequest[] = [];
  const server = new GrpcServer();
  const implementation: UntypedServiceImplementation = {
    Export: (call: { request: Buffer }, callback: (error: null, response: Buffer) => void) => {
      requests.push({ path: TRACE_SERVICE['Export']!.path, contentType: 'application/grpc', spans: decodeProtobufRequest(call.request) });
      // An empty ExportTraceServiceResponse.
      callback(null, Buffer.alloc(0));
    },
  };
  server.addService(TRACE_SERVICE, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    ),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    spans: spansOf(requests),
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
};
