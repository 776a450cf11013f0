"""The push listener: meter-initiated DLMS data notifications (alarms) over TCP.

    codec.py      sans-IO: WRAPPER/HDLC stream splitting, APDU parsing (plain
                  data-notification, general-glo-ciphering), GCM verification, content -> events
    directory.py  who sent it: system title / logical device name -> meter, keys, counters
    server.py     the asyncio server (one process, thousands of connections) and its sinks
    models.py     PushRejection (dropped messages), PushCounter (replay protection)

The listener never writes the measurement store: accepted events go to the Celery task
``collection.handle_push`` (collection/push_tasks.py). See docs/architecture.md, "Push listener".
"""
