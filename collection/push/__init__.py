"""The push listener: meter-initiated messages (alarms) over TCP, in any protocol whose
driver has a push decoder (collection/protocols/push.py; the listener's protocol is a setting).

    (decoder)     sans-IO, in the driver package: stream splitting, identifying the sender,
                  verifying and decoding into events (``registry.push_decoder(protocol)``)
    senders.py    the sender record, the directory interface and the replay guard
    directory.py  who sent it: system title / logical device name -> meter, keys, counters
    server.py     the asyncio server (one process, thousands of connections) and its sinks
    models.py     PushRejection (dropped messages), PushCounter (replay protection)

The listener never writes the measurement store: accepted events go to the Celery task
``collection.handle_push`` (collection/push_tasks.py). See docs/architecture.md, "Push listener".
"""
