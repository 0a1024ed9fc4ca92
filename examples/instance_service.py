"""The clone-instance service of Ladon's task docs: a task returning a LadonType."""

import time

from ladon.compat import PORTABLE_STRING
from ladon.types.ladontype import LadonType

from ladon_tasks import ladonize


class DiskImage(LadonType):
    name = PORTABLE_STRING
    size_mb = int


class InstanceInformation(LadonType):
    instance_id = PORTABLE_STRING
    name = PORTABLE_STRING
    running = bool
    disks = [DiskImage]
    tags = [PORTABLE_STRING]


class InstanceService(object):
    """Clone virtual-machine instances in the background."""

    @ladonize(PORTABLE_STRING, PORTABLE_STRING, rtype=InstanceInformation, tasktype=True)
    def cloneInstance(self, instance_id, new_instance_name, **kw):
        """Clone an instance: create the target, copy its disks, start it.

        @param instance_id: the instance to copy
        @param new_instance_name: the name of the copy
        @rtype: the new instance
        """
        steps = 20
        for step in range(steps):
            time.sleep(0.05)
            kw["update_progress"]((step + 1) / steps)
        response = InstanceInformation()
        response.instance_id = "%s-clone" % instance_id
        response.name = new_instance_name
        response.running = True
        response.disks = []
        for index in range(2):
            disk = DiskImage()
            disk.name = "%s-disk%d" % (new_instance_name, index)
            disk.size_mb = 1024 * (index + 1)
            response.disks.append(disk)
        response.tags = ["clone", "of-%s" % instance_id]
        return response
