// Apache Avro's Java side of tests/foundation/test_avro_java.py, run in one JVM start as a
// single-file source program on the avro-tools class path (tests/avro_java.py):
//
//   java -cp avro-tools.jar tests/AvroInterop.java TASKS OUT
//
// TASKS holds one task a line, "op<TAB>schema.avsc<TAB>payload"; OUT gets one line per task, in
// order: "ok<TAB>result" or "error<TAB>what went wrong".
//   fingerprint  -> SchemaNormalization.parsingFingerprint64 (decimal) <TAB> the parsing form
//   encode       payload: a record in Avro's JSON encoding -> base64 of the single-object message
//                that BinaryMessageEncoder writes
//   decode       payload: base64 of a single-object message -> the record BinaryMessageDecoder
//                reads, in Avro's JSON encoding (one line)

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.io.JsonEncoder;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;

public class AvroInterop {
    private static final Map<String, Schema> SCHEMAS = new HashMap<>();

    private static Schema schema(String path) throws Exception {
        Schema schema = SCHEMAS.get(path);
        if (schema == null) {
            // one parser per file: every exported file defines vtforge.Envelope again
            schema = new Schema.Parser().parse(new File(path));
            SCHEMAS.put(path, schema);
        }
        return schema;
    }

    private static String fingerprint(Schema schema) {
        return SchemaNormalization.parsingFingerprint64(schema) + "\t" + SchemaNormalization.toParsingForm(schema);
    }

    private static String encode(Schema schema, String json) throws Exception {
        GenericDatumReader<Object> reader = new GenericDatumReader<>(schema);
        Object record = reader.read(null, DecoderFactory.get().jsonDecoder(schema, json));
        BinaryMessageEncoder<Object> encoder = new BinaryMessageEncoder<>(GenericData.get(), schema);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        encoder.encode(record, out);
        return Base64.getEncoder().encodeToString(out.toByteArray());
    }

    private static String decode(Schema schema, String base64) throws Exception {
        BinaryMessageDecoder<Object> decoder = new BinaryMessageDecoder<>(GenericData.get(), schema);
        Object record = decoder.decode(Base64.getDecoder().decode(base64));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        JsonEncoder json = EncoderFactory.get().jsonEncoder(schema, out, false);
        new GenericDatumWriter<Object>(schema).write(record, json);
        json.flush();
        return out.toString(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        List<String> results = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args[0]), StandardCharsets.UTF_8)) {
            String[] task = line.split("\t", 3);
            try {
                Schema schema = schema(task[1]);
                String result;
                switch (task[0]) {
                    case "fingerprint": result = fingerprint(schema); break;
                    case "encode": result = encode(schema, task[2]); break;
                    case "decode": result = decode(schema, task[2]); break;
                    default: throw new IllegalArgumentException("unknown task " + task[0]);
                }
                results.add("ok\t" + result);
            } catch (Exception exc) {
                results.add("error\t" + exc.toString().replaceAll("\\s+", " "));
            }
        }
        Files.write(Path.of(args[1]), results, StandardCharsets.UTF_8);
    }
}
