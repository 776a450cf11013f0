"""XML file exchange in IEC 61968-9 (CIM) form, through a folder per organisation.

Layout of a target's folder (`folders.py`), below `AMI_EXCHANGE_ROOT`:

    <folder>/outgoing/   daily exports: MeterReadings, EndDeviceEvents, MeterConfig (`export.py`)
    <folder>/incoming/   MeterConfig files a third party drops for import (`importer.py`)
    <folder>/processed/  imported files, accepted whole
    <folder>/rejected/   refused files, each with `<name>.report.txt` beside it

Files appear in outgoing/ only complete (written under a dot-name, fsynced, renamed); a name
is the slot's (`<organisation>-<document>-<day>.xml`), so a re-run replaces the file in place
and never adds a second one. An SFTP target mirrors these folders on a third party's server
(`sftp.py`: exports uploaded whole, imports claimed into its processing/ and taken once).
The MeterConfig shape and its schema (`MeterConfig.xsd`) are in
`meterconfig.py` and docs/api.md ("File exchange").
"""
