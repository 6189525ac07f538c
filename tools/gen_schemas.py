"""Writes connector/schemas/*.schema.json. Run after editing; the JSON files are committed."""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "connector" / "schemas"
BASE = "https://connector.dev/schemas/"

ident = {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"}
template = {"type": "string"}
scalar = {"type": ["string", "number", "integer", "boolean", "null"]}

setting = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "default": {},
        "required": {"type": "boolean"},
        "secret": {"type": "boolean"},
        "type": {"enum": ["string", "list", "integer", "boolean", "number"]},
        "enum": {"type": "array"},
        "description": {"type": "string"},
    },
}
settings = {"type": "object", "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"}, "additionalProperties": {"$ref": "#/$defs/setting"}}

condition = {
    "description": "A condition: a mapping of path -> test, or all/any/not/expr. Never empty: "
                   "{} is refused, not read as 'always' (every order: status: {exists: true}).",
    "type": "object",
    "minProperties": 1,
    "properties": {
        "all": {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1},
        "any": {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1},
        "not": {"$ref": "#/$defs/condition"},
        "expr": {"type": "string"},
    },
    "patternProperties": {
        "^(?!(all|any|not|expr)$)[A-Za-z_][A-Za-z0-9_-]*(\\.[A-Za-z0-9_-]+)*$": {"$ref": "#/$defs/test"},
    },
    "additionalProperties": False,
}
test = {
    "anyOf": [
        scalar,
        {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "eq": scalar, "ne": scalar,
                "in": {"type": "array", "items": scalar, "minItems": 1},
                "not_in": {"type": "array", "items": scalar, "minItems": 1},
                "exists": {"type": "boolean"},
                "lt": {"type": ["number", "string"]}, "le": {"type": ["number", "string"]},
                "gt": {"type": ["number", "string"]}, "ge": {"type": ["number", "string"]},
            },
        },
    ]
}

request_props = {
    "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
    "path": template,
    "url_from": {"type": "string"},
    "query": {"type": "object", "additionalProperties": {}},
    "headers": {"type": "object", "additionalProperties": template},
    "json": {},
    "form": {"type": "object", "additionalProperties": template},
    "content": template,
    "content_type": {"type": "string"},
    "operation": {"type": "string"},
}
request = {
    "type": "object",
    "required": ["method"],
    "additionalProperties": False,
    "properties": request_props,
    "oneOf": [{"required": ["path"]}, {"required": ["url_from"]}],
}
step = {
    "type": "object",
    "required": ["name", "method"],
    "additionalProperties": False,
    "properties": {
        **request_props,
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "description": {"type": "string"},
        "when": {"$ref": "#/$defs/condition"},
        "expect": {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}, "minItems": 1},
        "outputs": {"type": "object", "additionalProperties": {"type": "string"}},
        "fail_if": {"type": "string", "description": "JMESPath on the response: the step fails when it is truthy"},
        "fail_message": {"type": "string", "description": "JMESPath on the response: the failure's message (the remote side's own words)"},
        "response": {
            "type": "object",
            "additionalProperties": False,
            "description": "How the body is read when it is not plain JSON (an XML report, a gzip download)",
            "properties": {
                "format": {"enum": ["json", "xml"]},
                "lists": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
                "compression_from": {"type": "string", "description": "JMESPath over the step context naming the compression (GZIP), e.g. steps.get_report.compressionAlgorithm"},
            },
        },
        "poll": {
            "type": "object",
            "required": ["until"],
            "additionalProperties": False,
            "properties": {
                "until": {"type": "string"},
                "fail_if": {"type": "string"},
                "interval_seconds": {"type": "number", "minimum": 0},
                "max_attempts": {"type": "integer", "minimum": 1},
            },
        },
    },
    "oneOf": [{"required": ["path"]}, {"required": ["url_from"]}],
}
# An action's `settle`: how a write whose answer was lost is settled when a read of the order
# cannot show its effect.
_codes = {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}, "minItems": 1}
settle_read = {
    "type": "object",
    "required": ["method", "path"],
    "additionalProperties": False,
    "description": "How a write whose answer was lost (a 5xx, a timeout, a kill) is settled when a fresh read of the order cannot show its effect (a reservation, a note): this read of the effect itself, done when the fresh plan still calls for the action. An `expect` status (default 200) says the effect is there (the action is recorded done, with this read's outputs), an `absent` status (default 404) that it is not (the action is sent again); anything else leaves it pending for the next run",
    "properties": {
        **{k: step["properties"][k] for k in ("path", "query", "headers", "operation", "description", "outputs", "expect")},
        "method": {"enum": ["GET"]},
        "absent": {**_codes, "description": "Statuses saying the effect is not there (default [404])"},
    },
}
# The `recover` of a batch: a step without a name (it is the batch's own), read after the
# effect step got no answer.
recover_step = {
    **{k: v for k, v in step.items() if k != "required"},
    "description": "After the effect step got no answer: a read (a poll) that is done once nothing the effect may have started is still in flight; the members are then re-planned from fresh reads",
    "required": ["method"],
    "properties": {**{k: v for k, v in step["properties"].items() if k != "name"}, "pages": {
        "type": "object",
        "additionalProperties": False,
        "required": ["next_token", "token_param"],
        "description": "The read is answered a page at a time: each page is read (the poll is done when its `until` holds on every page) until a page has no next-page token",
        "properties": {
            "next_token": {"type": "string", "minLength": 1,
                           "description": "JMESPath to the next page's token in the response (SP-API: nextToken)"},
            "token_param": {"type": "string", "minLength": 1,
                            "description": "The query parameter that sends the token back"},
            "token_alone": {"type": "boolean",
                            "description": "The token is sent as the only parameter (SP-API getFeeds); default false: with the others"},
        },
    }},
}

batch = {
    "description": "Gather this action's requests across the orders of a run and send them as one (Amazon: one feed, one message per order); each member's outcome is read from the result. A polling step never sleeps in the run: the batch waits in the state store and is checked again by a later sweep.",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "max_orders"
    ],
    "properties": {
        "max_orders": {
            "type": "integer",
            "minimum": 1,
            "description": "Members per batch (Amazon: messages per feed)"
        },
        "group_by": {
            "type": "string",
            "minLength": 1,
            "description": "A template over a member's context: one batch per distinct value (Amazon: the marketplace id)"
        },
        "effect": {
            "type": "string",
            "minLength": 1,
            "description": "The step that acts: a run that dies before it is re-planned, one whose effect got no answer is settled by `recover`"
        },
        "errors": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "from",
                "member"
            ],
            "description": "Which members the remote side refused",
            "properties": {
                "from": {
                    "type": "string",
                    "description": "JMESPath over the step context: the list of refusals"
                },
                "member": {
                    "type": "string",
                    "description": "The field of a refusal holding the member's position (1-based)"
                },
                "message": {
                    "type": "string",
                    "description": "The field of a refusal holding the remote side's words"
                }
            }
        },
        "recover": {
            "$ref": "#/$defs/recover_step"
        }
    }
}

field_expr = {
    "anyOf": [
        {"type": "string"},
        {
            "type": "object",
            "required": ["path"],
            "additionalProperties": False,
            "properties": {"path": {"type": "string"}, "map": {"type": "object"}, "default": {}},
        },
    ]
}
lookup = {
    "type": "object",
    "required": ["request", "found"],
    "additionalProperties": False,
    "properties": {
        "request": {"$ref": "#/$defs/request"},
        "found": {"type": "string"},
        "not_found_status": {"type": "array", "items": {"type": "integer"}},
    },
}

listing = {
    "type": "object",
    "required": ["request", "pagination"],
    "additionalProperties": False,
    "properties": {
        "request": {"$ref": "#/$defs/request"},
        "pagination": {
            "type": "object",
            "required": ["items"],
            "additionalProperties": False,
            "properties": {
                **{k: {"type": "string"} for k in ("items", "next_token", "token_param", "page_param", "total_pages")},
                "offset_param": {"type": "string", "description": "Offset pagination: the query parameter that carries the offset of the page's first record (0, then the records read so far); an empty page, or total reached, ends it"},
                "total": {"type": "string", "description": "JMESPath to the listing's record count (offset pagination; optional)"},
                "next_query": {"type": "string",
                               "description": "JMESPath to the next page's whole query string (Walmart's list.meta.nextCursor, '?a=1&b=2'): the next request is the listing path with exactly that query; none: last page"},
            },
        },
        "fan_out": {"type": "string",
                    "description": "A query parameter of the request whose template renders a list: the listing runs once per value (Walmart's one shipNodeType per call)"},
        "min_age_seconds": {"type": "integer", "minimum": 0},
    },
}

mapping = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": BASE + "mapping.schema.json",
    "title": "connector mapping file (mappings/<system>.yaml)",
    "type": "object",
    "required": ["system", "connection", "domains", "normalise"],
    "dependentRequired": {"variants": ["variant_by"], "variant_by": ["variants"]},
    "additionalProperties": False,
    "properties": {
        "system": ident,
        "title": {"type": "string"},
        "description": {"type": "string"},
        "settings": {"$ref": "#/$defs/settings"},
        "partition_by": {'type': 'string', 'pattern': '^[a-z][a-z0-9_]*$', 'description': "The setting (type: list) whose values partition this system's work as a source: one partition per value, each with its own cursor, watch list and worker job, the setting narrowed to that value (e.g. marketplace_ids); absent: one partition"},
        "variant_by": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$",
                       "description": "The setting whose value picks one of variants: (e.g. market); a value with no variant is the mapping as written"},
        "variants": {
            "description": "Overlays by the variant_by setting's value (e.g. mx), merged over this mapping at load time: mappings merge key by key, null removes a key, anything else replaces; the merged mapping must be valid on its own",
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    **{k: {"type": ["string", "null"]} for k in ("title", "description", "partition_by")},
                    **{k: {"type": ["object", "null"]} for k in ("settings", "connection", "domains", "orders", "notifications", "normalise", "actions")},
                },
            },
        },
        "connection": {
            "type": "object",
            "required": ["base_url"],
            "additionalProperties": False,
            "properties": {
                "base_url": template,
                "headers": {"type": "object", "additionalProperties": template},
                "auth": {
                    "type": "object",
                    "required": ["kind"],
                    "additionalProperties": False,
                    "properties": {
                        "kind": {"enum": ["none", "headers", "bearer", "oauth2_refresh_token",
                                          "oauth2_client_credentials", "lwa"],
                                 "description": "oauth2_refresh_token / oauth2_client_credentials: token_request exchanges the settings for an access token (cached, renewed before expires_field runs out and once on 401/403), {{ token }} in headers; lwa: old name of oauth2_refresh_token"},
                        "headers": {"type": "object", "additionalProperties": template},
                        "token_request": {"$ref": "#/$defs/request"},
                        "token_field": {"type": "string"},
                        "expires_field": {"type": "string"},
                    },
                },
                "secret_query_params": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9._~-]+$"}, "minItems": 1, "uniqueItems": True, "description": "Query parameters that carry credentials in URLs this system issues or accepts (a presigned URL's signature, e.g. X-Amz-Signature): cassettes mask their values by name, as they mask the auth section's headers"},
                "rate_limits_account": {
                    "type": "string",
                    "description": "Template over the settings naming the account the rate limits belong to (processes that render it the same share buckets through the state store); stored only as a digest",
                },
                "rate_limit_headers": {"type": "array", "items": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}, "minItems": 1, "uniqueItems": True, "description": "Response headers that report an operation's current rate in requests per second, tried in order (e.g. x-amzn-RateLimit-Limit): the operation's bucket refills at that rate, and an operation without rate_limits gets a bucket of burst 1. Only headers the server documents; absent: the declared rate_limits only"},
                "error_message": {'anyOf': [{'type': 'string', 'minLength': 1}, {'type': 'array', 'items': {'type': 'string', 'minLength': 1}, 'minItems': 1}], 'description': "JMESPath over an error response's JSON body giving the server's own words, or a list tried in order (the first that yields text wins); a result that is a list of strings is joined with '; '. Besides JMESPath's functions, placeholders(message, parameters) fills %1.. / %name. Without it (or when none yields text) the body is shown compacted"},
                "rate_limits": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["rate", "burst"],
                        "additionalProperties": False,
                        "properties": {"rate": {"type": "number", "exclusiveMinimum": 0}, "burst": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
        "domains": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {
                k: {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
                for k in ("status", "actor", "fulfilment", "terminal")
            },
        },
        "orders": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "list": {
                    "description": "How to list changed orders: one listing, or a list of them read one after the other in each run (an order found by two is read once)",
                    "anyOf": [{"$ref": "#/$defs/listing"}, {"type": "array", "items": {"$ref": "#/$defs/listing"}, "minItems": 1}],
                },
                "get": {"$ref": "#/$defs/lookup"},
                "lookup": {"type": "object", "additionalProperties": {"$ref": "#/$defs/lookup"}},
            },
        },
        "notifications": {
            "description": "Change notifications read from a message queue: each message queues one order for its partition's worker, which re-reads it by id (orders.get); polling stays the catch-up.",
            "type": "object",
            "required": ["transport", "queue_url", "order_id"],
            "additionalProperties": False,
            "properties": {
                "transport": {"enum": ["sqs"], "description": "The queue's protocol: sqs (Amazon SQS long polling; credentials from the AWS environment)"},
                "queue_url": {"type": "string", "description": "Template over the settings: the queue's URL; empty turns notifications off"},
                "accept": {"type": "string", "description": "JMESPath over the message body: a message for which it is not true is reported and dropped (e.g. the notification type)"},
                "order_id": {"type": "string", "description": "JMESPath over the message body to the order id (the id orders.get reads)"},
                "partition": {"type": "string", "description": "JMESPath over the message body to the partition key (e.g. the marketplace id); absent: one partition"},
            },
        },
        "normalise": {
            "type": "object",
            "required": ["id", "status"],
            "additionalProperties": False,
            "properties": {
                **{k: {"$ref": "#/$defs/field"} for k in ("id", "status", "actor", "fulfilment", "created_at", "updated_at", "buyer", "shipping", "totals")},
                "items": {
                    "type": "object",
                    "required": ["path", "fields"],
                    "additionalProperties": False,
                    "properties": {"path": {"type": "string"}, "fields": {"type": "object", "additionalProperties": {"type": "string"}}},
                },
                "attributes": {"type": "object", "additionalProperties": {"$ref": "#/$defs/field"}},
            },
        },
        "actions": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"},
            "additionalProperties": {
                "type": "object",
                "required": ["steps"],
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string"},
                    "mutating": {"type": "boolean"},
                    "kind": {"enum": ["cancel", "advance", "create", "note", "read"],
                             "description": "What the action does to the order, for conflict analysis (cancel versus advance/create on one system); without it the kind is guessed from the name"},
                    "params": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"default": {}, "required": {"type": "boolean"}, "enum": {"type": "array"}, "description": {"type": "string"}},
                        },
                    },
                    "precondition": {"$ref": "#/$defs/condition"},
                    "follow_up": {
                        "description": "Whether the order can call for another step once this action is done (the engine then reads it again and re-evaluates in the same run): true (the default), false, or a condition over the action's context before it is sent",
                        "anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/condition"}],
                    },
                    "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}, "minItems": 1},
                    "batch": batch,
                    "settle": settle_read,
                },
            },
        },
    },
    "$defs": {"setting": setting, "settings": settings, "condition": condition, "test": test,
              "request": request, "step": step, "field": field_expr, "lookup": lookup, "listing": listing,
              "recover_step": recover_step},
}

action_call = {
    "anyOf": [
        {"type": "string", "pattern": "^[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_]*)?$"},
        {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "propertyNames": {"pattern": "^[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_]*)?$"},
            "additionalProperties": {"type": ["object", "null"]},
        },
    ]
}
order = {"type": "object"}
rules = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": BASE + "rules.schema.json",
    "title": "connector rule file (rules/<source>-to-<target>.yaml)",
    "type": "object",
    "required": ["source", "target", "rules"],
    "additionalProperties": False,
    "properties": {
        "source": ident,
        "target": ident,
        "description": {"type": "string"},
        "hit_policy": {"enum": ["first", "all"]},
        "settings": {"$ref": "#/$defs/settings"},
        "partition_by": {'type': 'string', 'pattern': '^[a-z][a-z0-9_]*$', 'description': "A setting (type: list) of the source system whose values partition this flow's work, instead of the source mapping's partition_by"},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "when", "then"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
                    "description": {"type": "string"},
                    "when": {"$ref": "#/$defs/condition"},
                    "then": {"type": "array", "items": {"$ref": "#/$defs/action_call"}},
                },
            },
        },
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "expect"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "order": order, "order_raw": order,
                    "target": {"type": ["object", "null"]}, "target_raw": {"type": ["object", "null"]},
                    "settings": {"type": "object"},
                    "systems": {"type": "object", "additionalProperties": {"type": "object"}},
                    "outputs": {"type": "object", "additionalProperties": {"type": "object"}},
                    "expect": {"type": "array", "items": {"$ref": "#/$defs/action_call"}},
                    "rules": {"type": "array", "items": {"type": "string"}},
                },
                "oneOf": [{"required": ["order"]}, {"required": ["order_raw"]}],
            },
        },
    },
    "$defs": {"setting": setting, "settings": settings, "condition": condition, "test": test, "action_call": action_call},
}

project = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": BASE + "project.schema.json",
    "title": "connector project file (connector.yaml)",
    "type": "object",
    "required": ["systems", "flows"],
    "additionalProperties": False,
    "properties": {
        "state": {"type": "string"},
        "systems": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z0-9_-]*$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"mapping": {"type": "string"}, "settings": {"type": "object"}},
            },
        },
        "flows": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z0-9_-]*$"},
            "additionalProperties": {
                "type": "object",
                "required": ["rules"],
                "additionalProperties": False,
                "properties": {
                    "rules": {"type": "string"},
                    "settings": {"type": "object"},
                    "lookback_hours": {"type": "number", "exclusiveMinimum": 0},
                    "watch_hours": {"type": "number", "minimum": 0},
                    "concurrency": {"type": "integer", "minimum": 1, "maximum": 64},
                    "max_reevaluations": {"type": "integer", "minimum": 0, "maximum": 10},
                    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 1000,
                                     "description": "Runs an action may fail before it is parked for a person (default 5)"},
                    "retry_backoff_seconds": {"type": "number", "minimum": 0,
                                              "description": "Wait before the first retry of a failed action, doubled after each failure up to 6 h (default 300)"},
                    "settle_attempts": {"type": "integer", "minimum": 0, "maximum": 10,
                                        "description": "Times per order and run a write whose outcome is unknown (5xx, timeout) is settled in the run by reading the order again (default 2; 0: left to the next run)"},
                    "settle_seconds": {"type": "number", "minimum": 0, "maximum": 300,
                                       "description": "Wait before that read (default 2)"},
                },
            },
        },
    },
}

SCHEMAS = {"mapping": mapping, "rules": rules, "project": project}


def render() -> dict[str, str]:
    """Each schema file's text, as committed (tests/test_schema_files.py checks they match)."""
    return {f"{name}.schema.json": json.dumps(schema, indent=2) + "\n" for name, schema in SCHEMAS.items()}


if __name__ == "__main__":
    for file, text in render().items():
        (OUT / file).write_text(text)
    print("ok")
