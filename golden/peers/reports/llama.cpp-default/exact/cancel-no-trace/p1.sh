#!/usr/bin/env bash
# Sends one request recorded by amnesia. AMNESIA_TARGET overrides the base URL (ending in /v1);
# OPENAI_API_KEY, when set, is sent as a bearer token.
set -euo pipefail
default_target='http://127.0.0.1:36135/v1'
url="${AMNESIA_TARGET:-$default_target}"
url="${url%/}/chat/completions"
auth=()
if [ -n "${OPENAI_API_KEY:-}" ]; then auth=(-H "Authorization: Bearer $OPENAI_API_KEY"); fi
# ${auth[@]+...}: an empty array is "unbound" under set -u in bash before 4.4 (macOS).
curl -sS -N "$url" -H 'Content-Type: application/json' ${auth[@]+"${auth[@]}"} --data-binary @- <<'AMNESIA_REQUEST_BODY'
{
  "model": "tiny-chat-v2-da17b516f7a6",
  "messages": [
    {
      "role": "user",
      "content": "𓏬∯⋫𝍑🤔麻⇶𝟖ﲂ"
    }
  ],
  "tools": [
    {
      "type": "function",
      "function": {
        "name": "calculator",
        "description": "Evaluate a math expression",
        "parameters": {
          "type": "object",
          "properties": {
            "expression": {
              "type": "string",
              "description": "e.g. 2+2"
            }
          },
          "required": [
            "expression"
          ]
        }
      }
    },
    {
      "type": "function",
      "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
          "type": "object",
          "properties": {
            "location": {
              "type": "string",
              "description": "City name"
            },
            "unit": {
              "type": "string",
              "enum": [
                "celsius",
                "fahrenheit"
              ],
              "default": "celsius"
            }
          },
          "required": [
            "location"
          ]
        }
      }
    },
    {
      "type": "function",
      "function": {
        "name": "search_web",
        "description": "Search the web.\nReturns the top results.",
        "parameters": {
          "type": "object",
          "properties": {
            "query": {
              "type": "string"
            },
            "filters": {
              "type": "object",
              "description": "Optional filters",
              "properties": {
                "site": {
                  "type": "string"
                },
                "after": {
                  "type": [
                    "string",
                    "null"
                  ]
                }
              }
            },
            "top_k": {
              "type": "integer",
              "default": 5
            }
          },
          "required": [
            "query"
          ]
        }
      }
    },
    {
      "type": "function",
      "function": {
        "name": "create_event",
        "description": "Create a calendar event.",
        "parameters": {
          "type": "object",
          "properties": {
            "title": {
              "type": "string",
              "title": "Title",
              "examples": [
                "Standup"
              ]
            },
            "attendees": {
              "type": "array",
              "items": {
                "type": "object",
                "properties": {
                  "email": {
                    "type": "string"
                  }
                },
                "required": [
                  "email"
                ]
              }
            },
            "when": {
              "oneOf": [
                {
                  "type": "string",
                  "description": "ISO date"
                },
                {
                  "type": "number",
                  "description": "epoch seconds"
                }
              ]
            }
          },
          "required": [
            "title"
          ]
        }
      }
    },
    {
      "type": "function",
      "function": {
        "name": "get_time",
        "description": "Current UTC time."
      }
    }
  ],
  "temperature": 0.34,
  "seed": 2147483647,
  "logprobs": true,
  "max_tokens": 16384,
  "stream": true
}
AMNESIA_REQUEST_BODY
